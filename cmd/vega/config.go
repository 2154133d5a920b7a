package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of every subcommand. Each field has a default and
// is set by its VEGA_* environment variable or by the flag of the same name
// (lower case, without the prefix, '_' as '-': VEGA_HTTP_ADDR is -http-addr).
// Flags win over the environment. docs/configuration.md is checked against
// the settings table by a test.
type Config struct {
	HTTPAddr           string
	DataDir            string
	BootstrapToken     string
	DatabaseURL        string
	NATSURL            string
	NATSListen         string
	NATSToken          string
	NATSCredentials    string
	NATSStream         string
	NATSSubjectPrefix  string
	BlobURL            string
	RunnerLauncher     string
	LLMProviderURL     string
	LLMProviderAPIKey  string
	LLMProxyURL        string
	ScanTimeout        time.Duration
	WorkerConcurrency  int
	SSEMaxConns        int
	SSEMaxPerPrincipal int
	StreamTokenTTL     time.Duration
	GitAllowPrivate    bool
	FingerprintKey     string
	EngineSarifCommand string
	EngineAgentCommand string
	MaxSnapshotBytes   int64
	LogLevel           string
	LogFormat          string
	LLMProxyAddr       string
	LLMPrices          string
	LLMModel           string
	EngineAgentEnv     string
	ECSCluster         string
	ECSTaskDefinition  string
	ECSSubnets         string
	ECSSecurityGroups  string
	ECSAssignPublicIP  bool
	ECSRegion          string
	ECSEndpoint        string
	ScanLease          time.Duration
	MaxScanAttempts    int
	ReapInterval       time.Duration
	SecureCookies      bool
}

// setting describes one configuration variable.
type setting struct {
	env, def, doc string
	secret        bool
	set           func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (such as 30m or 90s): %q", v)
		}
		*p(c) = d
		return nil
	}
}

func integer(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p(c) = n
		return nil
	}
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not true or false: %q", v)
		}
		*p(c) = b
		return nil
	}
}

// settings is the table of every VEGA_* variable, in documentation order.
var settings = []setting{
	{env: "VEGA_HTTP_ADDR", def: ":8000", doc: "Address the HTTP API listens on; port 0 picks a free port.", set: str(func(c *Config) *string { return &c.HTTPAddr })},
	{env: "VEGA_DATA_DIR", def: "./.vega", doc: "Directory for the SQLite database, the embedded NATS store, blobs and generated keys.", set: str(func(c *Config) *string { return &c.DataDir })},
	{env: "VEGA_BOOTSTRAP_TOKEN", def: "", secret: true, doc: "Token accepted as the admin principal `admin`. Unset: `vega dev` generates one and prints it once; `vega api` accepts no admin token.", set: str(func(c *Config) *string { return &c.BootstrapToken })},
	{env: "VEGA_DATABASE_URL", def: "", secret: true, doc: "PostgreSQL URL for the event store and read models. Unset: embedded SQLite under the data dir.", set: str(func(c *Config) *string { return &c.DatabaseURL })},
	{env: "VEGA_NATS_URL", def: "", doc: "External NATS JetStream URL. Unset: a NATS server embedded in the process.", set: str(func(c *Config) *string { return &c.NATSURL })},
	{env: "VEGA_NATS_LISTEN", def: "", doc: "Address for the embedded NATS server to listen on (host:port). Unset: no TCP port, in-process connections only.", set: str(func(c *Config) *string { return &c.NATSListen })},
	{env: "VEGA_NATS_TOKEN", def: "", secret: true, doc: "Token for the external NATS server.", set: str(func(c *Config) *string { return &c.NATSToken })},
	{env: "VEGA_NATS_CREDENTIALS", def: "", doc: "Credentials (.creds) file for the external NATS server.", set: str(func(c *Config) *string { return &c.NATSCredentials })},
	{env: "VEGA_NATS_STREAM", def: "VEGA_EVENTS", doc: "JetStream stream that carries the events.", set: str(func(c *Config) *string { return &c.NATSStream })},
	{env: "VEGA_NATS_SUBJECT_PREFIX", def: "vega.events", doc: "Subject prefix of the events: `<prefix>.<category>.<stream_id>.<type>`.", set: str(func(c *Config) *string { return &c.NATSSubjectPrefix })},
	{env: "VEGA_BLOB_URL", def: "", doc: "Blob storage: `s3://bucket/prefix?region=…&endpoint=…&path_style=true&sse=AES256`, or a directory. Unset: `<data dir>/blobs`.", set: str(func(c *Config) *string { return &c.BlobURL })},
	{env: "VEGA_RUNNER_LAUNCHER", def: "inprocess", doc: "How scans run: `inprocess` (a goroutine), `process` (a child `vega runner`), `ecs` (one ECS task per scan).", set: str(func(c *Config) *string { return &c.RunnerLauncher })},
	{env: "VEGA_LLM_PROVIDER_URL", def: "", doc: "Base URL of the OpenAI-compatible provider behind the LLM proxy. Unset: the ai engine is unavailable.", set: str(func(c *Config) *string { return &c.LLMProviderURL })},
	{env: "VEGA_LLM_PROVIDER_API_KEY", def: "", secret: true, doc: "The provider's API key; only the LLM proxy holds it.", set: str(func(c *Config) *string { return &c.LLMProviderAPIKey })},
	{env: "VEGA_LLM_PROXY_URL", def: "", doc: "Base URL runners use to reach the LLM proxy, ending in `/v1` (for example `http://llm-proxy:8100/v1`). `vega dev` sets it to its own proxy.", set: str(func(c *Config) *string { return &c.LLMProxyURL })},
	{env: "VEGA_SCAN_TIMEOUT", def: "30m", doc: "Wall-clock limit of one scan; past it the scan ends as timed_out.", set: dur(func(c *Config) *time.Duration { return &c.ScanTimeout })},
	{env: "VEGA_SCAN_LEASE", def: "2m", doc: "How long a worker's claim on a scan lasts without renewal; runners renew it at half this. A runner silent for longer is presumed lost and the reaper requeues or fails its scan.", set: dur(func(c *Config) *time.Duration { return &c.ScanLease })},
	{env: "VEGA_MAX_SCAN_ATTEMPTS", def: "3", doc: "Claims a scan may have; a scan whose runner is lost after the last one fails (runner lost).", set: integer(func(c *Config) *int { return &c.MaxScanAttempts })},
	{env: "VEGA_REAP_INTERVAL", def: "5s", doc: "How often a worker looks for expired leases and timed-out scans.", set: dur(func(c *Config) *time.Duration { return &c.ReapInterval })},
	{env: "VEGA_WORKER_CONCURRENCY", def: "2", doc: "Most runners one worker runs at once.", set: integer(func(c *Config) *int { return &c.WorkerConcurrency })},
	{env: "VEGA_SSE_MAX_CONNS", def: "5000", doc: "Most live (SSE) connections one API process serves.", set: integer(func(c *Config) *int { return &c.SSEMaxConns })},
	{env: "VEGA_SSE_MAX_PER_PRINCIPAL", def: "20", doc: "Most live (SSE) connections of one principal.", set: integer(func(c *Config) *int { return &c.SSEMaxPerPrincipal })},
	{env: "VEGA_STREAM_TOKEN_TTL", def: "5m", doc: "Lifetime of the short-lived tokens browsers use for SSE.", set: dur(func(c *Config) *time.Duration { return &c.StreamTokenTTL })},
	{env: "VEGA_GIT_ALLOW_PRIVATE", def: "false", doc: "Allow git sources on loopback and private addresses (tests, local use).", set: boolean(func(c *Config) *bool { return &c.GitAllowPrivate })},
	{env: "VEGA_FINGERPRINT_KEY", def: "", secret: true, doc: "Key of the finding fingerprints (HMAC-SHA-256), at least 32 bytes; stream-token and session keys derive from it. Unset: generated into the data dir once and kept — required with VEGA_DATABASE_URL, where every process must share it.", set: str(func(c *Config) *string { return &c.FingerprintKey })},
	{env: "VEGA_ENGINE_SARIF_COMMAND", def: "", doc: "Command the `sarif` engine runs in the snapshot; it must write SARIF 2.1.0.", set: str(func(c *Config) *string { return &c.EngineSarifCommand })},
	{env: "VEGA_ENGINE_AGENT_COMMAND", def: "", doc: "Command the `agent` engine runs in the snapshot.", set: str(func(c *Config) *string { return &c.EngineAgentCommand })},
	{env: "VEGA_MAX_SNAPSHOT_BYTES", def: "536870912", doc: "Largest snapshot upload accepted, in bytes (512 MiB).", set: func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		c.MaxSnapshotBytes = n
		return nil
	}},
	{env: "VEGA_LLM_PROXY_ADDR", def: ":8100", doc: "Address `vega llm-proxy` listens on. `vega dev` runs the proxy on a free loopback port instead.", set: str(func(c *Config) *string { return &c.LLMProxyAddr })},
	{env: "VEGA_LLM_PRICES", def: "", doc: "Price table of the LLM proxy: JSON `{\"model\": {\"input_per_mtok\": …, \"output_per_mtok\": …}}` or a path to such a file. Unset: built-in defaults with a deliberately high `*` price.", set: str(func(c *Config) *string { return &c.LLMPrices })},
	{env: "VEGA_LLM_MODEL", def: "gpt-4o-mini", doc: "Model the `ai` engine asks the proxy for.", set: str(func(c *Config) *string { return &c.LLMModel })},
	{env: "VEGA_ENGINE_AGENT_ENV", def: "", doc: "Extra variables for the `agent` command, mapping its own names to the proxy URL and the scan token: `CODEX_API_BASE=url,CODEX_API_KEY=token`.", set: str(func(c *Config) *string { return &c.EngineAgentEnv })},
	{env: "VEGA_ECS_CLUSTER", def: "", doc: "ECS launcher: cluster name or ARN.", set: str(func(c *Config) *string { return &c.ECSCluster })},
	{env: "VEGA_ECS_TASK_DEFINITION", def: "", doc: "ECS launcher: task definition (family:revision or ARN) whose container `vega` runs `vega runner`.", set: str(func(c *Config) *string { return &c.ECSTaskDefinition })},
	{env: "VEGA_ECS_SUBNETS", def: "", doc: "ECS launcher: comma-separated subnet IDs (awsvpc).", set: str(func(c *Config) *string { return &c.ECSSubnets })},
	{env: "VEGA_ECS_SECURITY_GROUPS", def: "", doc: "ECS launcher: comma-separated security group IDs.", set: str(func(c *Config) *string { return &c.ECSSecurityGroups })},
	{env: "VEGA_ECS_ASSIGN_PUBLIC_IP", def: "false", doc: "ECS launcher: give tasks a public IP.", set: boolean(func(c *Config) *bool { return &c.ECSAssignPublicIP })},
	{env: "VEGA_ECS_REGION", def: "", doc: "ECS launcher: AWS region (unset: the standard AWS configuration).", set: str(func(c *Config) *string { return &c.ECSRegion })},
	{env: "VEGA_ECS_ENDPOINT", def: "", doc: "ECS launcher: endpoint override (tests, VPC endpoints).", set: str(func(c *Config) *string { return &c.ECSEndpoint })},
	{env: "VEGA_SECURE_COOKIES", def: "false", doc: "Mark the dashboard's session cookies Secure: set it whenever the dashboard is served over HTTPS (directly or behind a proxy).", set: boolean(func(c *Config) *bool { return &c.SecureCookies })},
	{env: "VEGA_LOG_LEVEL", def: "info", doc: "Log level: debug, info, warn, error.", set: str(func(c *Config) *string { return &c.LogLevel })},
	{env: "VEGA_LOG_FORMAT", def: "text", doc: "Log format on standard error: text or json.", set: str(func(c *Config) *string { return &c.LogFormat })},
}

func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "VEGA_")), "_", "-")
}

// loadConfig applies the defaults, then the environment, then the flags in
// args (a flag set per subcommand), and validates the result.
func loadConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	var c Config
	for _, s := range settings {
		if err := s.set(&c, s.def); err != nil {
			return c, fmt.Errorf("default of %s: %w", s.env, err)
		}
	}
	var errs []error
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			if err := s.set(&c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
			}
		}
	}
	for _, s := range settings {
		s := s
		fs.Func(flagName(s.env), s.doc+" (env "+s.env+", default "+quoteDefault(s.def)+")", func(v string) error { return s.set(&c, v) })
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func quoteDefault(d string) string {
	if d == "" {
		return "unset"
	}
	return d
}

// Validate checks the values that have a fixed set of choices or a range.
func (c Config) Validate() error {
	var errs []error
	switch c.RunnerLauncher {
	case "inprocess", "process", "ecs":
	default:
		errs = append(errs, fmt.Errorf("VEGA_RUNNER_LAUNCHER: %q is not inprocess, process or ecs", c.RunnerLauncher))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("VEGA_DATA_DIR: empty"))
	}
	if c.ScanTimeout <= 0 {
		errs = append(errs, fmt.Errorf("VEGA_SCAN_TIMEOUT: %s is not positive", c.ScanTimeout))
	}
	if c.StreamTokenTTL <= 0 {
		errs = append(errs, fmt.Errorf("VEGA_STREAM_TOKEN_TTL: %s is not positive", c.StreamTokenTTL))
	}
	if c.ScanLease < 2*time.Second || c.ReapInterval <= 0 || c.MaxScanAttempts < 1 {
		errs = append(errs, errors.New("VEGA_SCAN_LEASE must be at least 2s, VEGA_REAP_INTERVAL positive and VEGA_MAX_SCAN_ATTEMPTS at least 1"))
	}
	if c.WorkerConcurrency < 1 {
		errs = append(errs, fmt.Errorf("VEGA_WORKER_CONCURRENCY: %d is below 1", c.WorkerConcurrency))
	}
	if c.SSEMaxConns < 1 || c.SSEMaxPerPrincipal < 1 {
		errs = append(errs, errors.New("VEGA_SSE_MAX_CONNS and VEGA_SSE_MAX_PER_PRINCIPAL must be at least 1"))
	}
	if c.MaxSnapshotBytes < 1 {
		errs = append(errs, fmt.Errorf("VEGA_MAX_SNAPSHOT_BYTES: %d is below 1", c.MaxSnapshotBytes))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("VEGA_LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("VEGA_LOG_FORMAT: %q is not text or json", c.LogFormat))
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("VEGA_DATABASE_URL: not a postgres:// URL"))
		}
	}
	return errors.Join(errs...)
}

// SQLitePath is where the embedded store lives.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "vega.db") }
