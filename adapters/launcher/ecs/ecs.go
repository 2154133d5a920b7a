// Package ecs launches each runner as one Amazon ECS task (RunTask), the
// distributed shape's isolation: a task definition that runs the vega
// image, with the scan ID passed as the container's command
// (`runner --scan ID --fence N`) through a container override.
package ecs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/vega-sec/vega/commands/worker"
)

// Name is the launcher's name in RunnerLaunched events.
const Name = "ecs"

// Defaults of Config.
const (
	// DefaultContainerName is the container of the task definition that
	// runs vega.
	DefaultContainerName = "vega"
	// DefaultLaunchType applies when neither LaunchType nor
	// CapacityProviders is set.
	DefaultLaunchType = "FARGATE"
	// DefaultStartedBy tags tasks started by Vega's workers (ECS allows
	// 36 characters).
	DefaultStartedBy = "vega-worker"
	// StopReason is recorded on tasks that Stop ends.
	StopReason = "stopped by vega worker"
)

// Config describes where and how runner tasks run.
type Config struct {
	// Cluster is the cluster's name or ARN. Required.
	Cluster string
	// TaskDefinition is family[:revision] or an ARN. Required.
	TaskDefinition string
	// LaunchType: FARGATE, EC2 or EXTERNAL; exclusive with
	// CapacityProviders (DefaultLaunchType when both are empty).
	LaunchType string
	// CapacityProviders, when set, is the capacity provider strategy (equal
	// weights, base 0 except the first, base 1).
	CapacityProviders []string
	// PlatformVersion (Fargate; empty: LATEST).
	PlatformVersion string
	// Subnets and SecurityGroups of the awsvpc network configuration;
	// Subnets is required for Fargate.
	Subnets, SecurityGroups []string
	// AssignPublicIP gives the task a public IP (Fargate in a public subnet
	// without NAT). Default off.
	AssignPublicIP bool
	// ContainerName is the container whose command is overridden
	// (DefaultContainerName).
	ContainerName string
	// Command is the argv before "--scan ID --fence N" (default
	// ["runner"]: the image's entrypoint is vega).
	Command []string
	// Env is set on the container; secrets belong in the task definition
	// (Secrets Manager), never here. The LLM provider's key is refused.
	Env map[string]string
	// StartedBy (DefaultStartedBy).
	StartedBy string
	// Region, Endpoint (tests, VPC endpoints), Credentials and HTTPClient
	// configure the client; unset ones come from the standard AWS chain.
	Region      string
	Endpoint    string
	Credentials aws.CredentialsProvider
	HTTPClient  *http.Client
	// Logger (nil: discard).
	Logger *slog.Logger
}

var _ worker.Launcher = (*Launcher)(nil)

// Launcher runs runners as ECS tasks. It is safe for concurrent use.
type Launcher struct {
	cfg    Config
	client *ecs.Client
	log    *slog.Logger
}

// New returns a Launcher. It fails for a config without cluster or task
// definition, with both a launch type and capacity providers, passing the
// provider key, or when the AWS configuration cannot be loaded.
func New(ctx context.Context, cfg Config) (*Launcher, error) {
	switch {
	case cfg.Cluster == "", cfg.TaskDefinition == "":
		return nil, errors.New("new ecs launcher: Cluster and TaskDefinition are required")
	case cfg.LaunchType != "" && len(cfg.CapacityProviders) > 0:
		return nil, errors.New("new ecs launcher: LaunchType and CapacityProviders are exclusive")
	}
	if _, ok := cfg.Env["VEGA_LLM_PROVIDER_API_KEY"]; ok {
		return nil, errors.New("new ecs launcher: VEGA_LLM_PROVIDER_API_KEY may not be passed to runners")
	}
	if cfg.LaunchType == "" && len(cfg.CapacityProviders) == 0 {
		cfg.LaunchType = DefaultLaunchType
	}
	if cfg.LaunchType != "" && !slices.Contains(types.LaunchType("").Values(), types.LaunchType(cfg.LaunchType)) {
		return nil, fmt.Errorf("new ecs launcher: unknown launch type %q", cfg.LaunchType)
	}
	if cfg.ContainerName == "" {
		cfg.ContainerName = DefaultContainerName
	}
	if len(cfg.Command) == 0 {
		cfg.Command = []string{"runner"}
	}
	if cfg.StartedBy == "" {
		cfg.StartedBy = DefaultStartedBy
	}
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(cfg.HTTPClient))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("new ecs launcher: %w", err)
	}
	client := ecs.NewFromConfig(awsCfg, func(o *ecs.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Launcher{cfg: cfg, client: client, log: log.With("component", "launcher", "launcher", Name)}, nil
}

// Name returns Name.
func (l *Launcher) Name() string { return Name }

// Input returns the RunTask request for job j.
func (l *Launcher) Input(j worker.Job) *ecs.RunTaskInput {
	c := l.cfg
	cmd := append(append([]string(nil), c.Command...), "--scan", j.ScanID, "--fence", strconv.FormatUint(j.Fence, 10))
	env := make([]types.KeyValuePair, 0, len(c.Env))
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, types.KeyValuePair{Name: aws.String(k), Value: aws.String(c.Env[k])})
	}
	in := &ecs.RunTaskInput{
		Cluster:        aws.String(c.Cluster),
		TaskDefinition: aws.String(c.TaskDefinition),
		Count:          aws.Int32(1),
		StartedBy:      aws.String(c.StartedBy),
		// The same attempt launched twice (a retried launch) is one task.
		ClientToken: aws.String(clientToken(j)),
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{
			Name: aws.String(c.ContainerName), Command: cmd, Environment: env,
		}}},
		Tags: []types.Tag{{Key: aws.String("vega.scan-id"), Value: aws.String(j.ScanID)},
			{Key: aws.String("vega.fence"), Value: aws.String(strconv.FormatUint(j.Fence, 10))}},
	}
	if c.LaunchType != "" {
		in.LaunchType = types.LaunchType(c.LaunchType)
	}
	for i, cp := range c.CapacityProviders {
		item := types.CapacityProviderStrategyItem{CapacityProvider: aws.String(cp), Weight: 1}
		if i == 0 {
			item.Base = 1
		}
		in.CapacityProviderStrategy = append(in.CapacityProviderStrategy, item)
	}
	if c.PlatformVersion != "" {
		in.PlatformVersion = aws.String(c.PlatformVersion)
	}
	if len(c.Subnets) > 0 || len(c.SecurityGroups) > 0 {
		assign := types.AssignPublicIpDisabled
		if c.AssignPublicIP {
			assign = types.AssignPublicIpEnabled
		}
		in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: c.Subnets, SecurityGroups: c.SecurityGroups, AssignPublicIp: assign,
		}}
	}
	return in
}

// clientToken is RunTask's idempotency token for one attempt (at most 64
// characters).
func clientToken(j worker.Job) string {
	t := "vega-" + j.ScanID + "-" + strconv.FormatUint(j.Fence, 10)
	if len(t) > 64 {
		t = t[:64]
	}
	return t
}

// Launch runs one task for j and returns its ARN. A RunTask that reports
// failures (no capacity, a bad subnet) is an error naming them.
func (l *Launcher) Launch(ctx context.Context, j worker.Job) (string, error) {
	out, err := l.client.RunTask(ctx, l.Input(j))
	if err != nil {
		return "", fmt.Errorf("launch runner of scan %s: run task: %w", j.ScanID, err)
	}
	if len(out.Tasks) == 0 || out.Tasks[0].TaskArn == nil {
		var reasons []string
		for _, f := range out.Failures {
			reasons = append(reasons, aws.ToString(f.Arn)+": "+aws.ToString(f.Reason)+" "+aws.ToString(f.Detail))
		}
		return "", fmt.Errorf("launch runner of scan %s: run task failed: %s", j.ScanID, strings.Join(reasons, "; "))
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	l.log.Info("runner task started", "scan_id", j.ScanID, "fence", j.Fence, "task_arn", arn)
	return arn, nil
}

// Stop stops the task (StopTask); ECS accepts stopping a stopped task.
func (l *Launcher) Stop(ctx context.Context, jobID string) error {
	_, err := l.client.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(l.cfg.Cluster), Task: aws.String(jobID), Reason: aws.String(StopReason)})
	if err != nil {
		return fmt.Errorf("stop runner task %s: %w", jobID, err)
	}
	return nil
}
