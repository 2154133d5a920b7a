package ecs_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/vega-sec/vega/adapters/launcher/ecs"
	"github.com/vega-sec/vega/commands/worker"
)

const targetPrefix = "AmazonEC2ContainerServiceV20141113."

// fakeECS plays the ECS API (JSON 1.1) and keeps every request.
type fakeECS struct {
	mu       sync.Mutex
	requests []call
	fail     bool
}

type call struct {
	target string
	body   map[string]any
}

func (f *fakeECS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" ||
		!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256") {
		http.Error(w, "bad request shape", http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, call{target: strings.TrimPrefix(target, targetPrefix), body: body})
	fail := f.fail
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target {
	case targetPrefix + "RunTask":
		if fail {
			_, _ = io.WriteString(w, `{"tasks":[],"failures":[{"arn":"arn:aws:ecs:eu-west-1:1:cluster/vega","reason":"RESOURCE:MEMORY","detail":"no capacity"}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"tasks":[{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/vega/abc123","lastStatus":"PROVISIONING"}],"failures":[]}`)
	case targetPrefix + "StopTask":
		_, _ = io.WriteString(w, `{"task":{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/vega/abc123","lastStatus":"STOPPED"}}`)
	default:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"InvalidParameterException","message":"unknown target"}`)
	}
}

func (f *fakeECS) calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.requests...)
}

func newLauncher(t *testing.T, f *fakeECS, cfg ecs.Config) *ecs.Launcher {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.Endpoint, cfg.Region = srv.URL, "eu-west-1"
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
	l, err := ecs.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// jsonOf round-trips v through JSON, to compare with a decoded body.
func jsonOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunTaskRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  ecs.Config
		want map[string]any
	}{
		{
			name: "fargate with public IP",
			cfg: ecs.Config{Cluster: "vega", TaskDefinition: "vega-runner:7", Subnets: []string{"subnet-a", "subnet-b"},
				SecurityGroups: []string{"sg-1"}, AssignPublicIP: true, PlatformVersion: "1.4.0",
				Env: map[string]string{"VEGA_NATS_URL": "nats://bus:4222", "VEGA_BLOB_URL": "s3://snaps"}},
			want: map[string]any{
				"cluster": "vega", "taskDefinition": "vega-runner:7", "count": 1, "launchType": "FARGATE",
				"platformVersion": "1.4.0", "startedBy": "vega-worker", "clientToken": "vega-01SCAN-2",
				"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{
					"subnets": []any{"subnet-a", "subnet-b"}, "securityGroups": []any{"sg-1"}, "assignPublicIp": "ENABLED"}},
				"overrides": map[string]any{"containerOverrides": []any{map[string]any{
					"name":    "vega",
					"command": []any{"runner", "--scan", "01SCAN", "--fence", "2"},
					"environment": []any{
						map[string]any{"name": "VEGA_BLOB_URL", "value": "s3://snaps"},
						map[string]any{"name": "VEGA_NATS_URL", "value": "nats://bus:4222"},
					},
				}}},
				"tags": []any{map[string]any{"key": "vega.scan-id", "value": "01SCAN"}, map[string]any{"key": "vega.fence", "value": "2"}},
			},
		},
		{
			name: "capacity providers, private subnets",
			cfg: ecs.Config{Cluster: "arn:aws:ecs:eu-west-1:1:cluster/vega", TaskDefinition: "vega-runner",
				CapacityProviders: []string{"FARGATE_SPOT", "FARGATE"}, Subnets: []string{"subnet-p"},
				ContainerName: "app", Command: []string{"/vega", "runner"}, StartedBy: "w1"},
			want: map[string]any{
				"cluster": "arn:aws:ecs:eu-west-1:1:cluster/vega", "taskDefinition": "vega-runner", "count": 1,
				"startedBy": "w1", "clientToken": "vega-01SCAN-2",
				"capacityProviderStrategy": []any{
					map[string]any{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 1},
					map[string]any{"capacityProvider": "FARGATE", "weight": 1}, // base 0 is the default, not sent
				},
				"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{
					"subnets": []any{"subnet-p"}, "assignPublicIp": "DISABLED"}},
				"overrides": map[string]any{"containerOverrides": []any{map[string]any{
					"name": "app", "command": []any{"/vega", "runner", "--scan", "01SCAN", "--fence", "2"}, "environment": []any{},
				}}},
				"tags": []any{map[string]any{"key": "vega.scan-id", "value": "01SCAN"}, map[string]any{"key": "vega.fence", "value": "2"}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeECS{}
			l := newLauncher(t, f, tc.cfg)
			arn, err := l.Launch(t.Context(), worker.Job{ScanID: "01SCAN", Fence: 2})
			if err != nil {
				t.Fatalf("Launch: %v", err)
			}
			if arn != "arn:aws:ecs:eu-west-1:123456789012:task/vega/abc123" {
				t.Errorf("job ID %q", arn)
			}
			calls := f.calls()
			if len(calls) != 1 || calls[0].target != "RunTask" {
				t.Fatalf("calls %+v", calls)
			}
			got, want := calls[0].body, jsonOf(t, tc.want)
			// An empty environment may be sent as [] or left out.
			if co := got["overrides"].(map[string]any)["containerOverrides"].([]any)[0].(map[string]any); co["environment"] == nil {
				co["environment"] = []any{}
			}
			if !reflect.DeepEqual(any(got), want) {
				gb, _ := json.MarshalIndent(got, "", " ")
				wb, _ := json.MarshalIndent(want, "", " ")
				t.Errorf("RunTask body\n%s\nwant\n%s", gb, wb)
			}
		})
	}
}

func TestStopTaskAndFailures(t *testing.T) {
	t.Parallel()
	f := &fakeECS{}
	l := newLauncher(t, f, ecs.Config{Cluster: "vega", TaskDefinition: "vega-runner", Subnets: []string{"s"}})
	if err := l.Stop(t.Context(), "arn:aws:ecs:eu-west-1:123456789012:task/vega/abc123"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	calls := f.calls()
	want := map[string]any{"cluster": "vega", "task": "arn:aws:ecs:eu-west-1:123456789012:task/vega/abc123", "reason": ecs.StopReason}
	if len(calls) != 1 || calls[0].target != "StopTask" || !reflect.DeepEqual(calls[0].body, want) {
		t.Errorf("calls %+v", calls)
	}
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
	_, err := l.Launch(t.Context(), worker.Job{ScanID: "01SCAN", Fence: 1})
	if err == nil || !strings.Contains(err.Error(), "RESOURCE:MEMORY") {
		t.Errorf("Launch with failures: %v", err)
	}
}

func TestConfigRefusals(t *testing.T) {
	t.Parallel()
	for _, cfg := range []ecs.Config{
		{TaskDefinition: "x"},
		{Cluster: "x"},
		{Cluster: "x", TaskDefinition: "x", LaunchType: "FARGATE", CapacityProviders: []string{"FARGATE"}},
		{Cluster: "x", TaskDefinition: "x", LaunchType: "MOON"},
		{Cluster: "x", TaskDefinition: "x", Env: map[string]string{"VEGA_LLM_PROVIDER_API_KEY": "sk"}},
	} {
		if _, err := ecs.New(t.Context(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
