package nats

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of Config. Each applies when its field is left at the zero value.
const (
	// DefaultStreamName is the JetStream stream that holds every event.
	DefaultStreamName = "VEGA_EVENTS"
	// DefaultSubjectPrefix is the first tokens of every event subject.
	DefaultSubjectPrefix = "vega.events"
	// DefaultMaxAge keeps events on the bus for 30 days. The store is the
	// source of truth; the stream is a transport with a replay buffer.
	DefaultMaxAge = 30 * 24 * time.Hour
	// DefaultMaxBytes caps the stream at 4 GiB; the oldest events are
	// discarded first (limits retention).
	DefaultMaxBytes int64 = 4 << 30
	// DefaultReplicas is one copy; a cluster sets 3.
	DefaultReplicas = 1
	// DefaultDuplicateWindow is how long the server remembers Nats-Msg-Id
	// values. A relay that restarts within it (or retries a page within it)
	// cannot store an event twice; each remembered ID costs server memory,
	// so it is minutes, not hours.
	DefaultDuplicateWindow = 5 * time.Minute
	// MinDuplicateWindow is the shortest window Validate accepts: NATS's own
	// default, and longer than any page retry takes.
	MinDuplicateWindow = 2 * time.Minute
	// DefaultConnectionName names Vega's connections in server monitoring.
	DefaultConnectionName = "vega"
	// DefaultStartTimeout bounds the wait for the embedded server to accept
	// connections and for the first connection to an external one.
	DefaultStartTimeout = 10 * time.Second
	// DefaultDrainTimeout bounds Close's drain of the connection.
	DefaultDrainTimeout = 5 * time.Second
	// DefaultMaxPayload is the largest message the embedded server accepts:
	// enough for an event at eventstore.MaxEventDataBytes plus its envelope.
	// An external server's max_payload is its own (1 MiB unless configured);
	// the Publisher shrinks bigger events to a reference (see Envelope).
	DefaultMaxPayload = 8 << 20
	// DefaultPublishWindow is how many publishes a Publisher keeps in
	// flight (sent, ack not yet received) per Publish call.
	DefaultPublishWindow = 1024
	// DefaultAckTimeout is how long a Publisher waits for one PubAck.
	DefaultAckTimeout = 5 * time.Second
	// ReconnectBaseWait and ReconnectMaxWait bound the exponential backoff
	// between reconnect attempts to an external server; ReconnectJitter is
	// added at random to each wait.
	ReconnectBaseWait = 250 * time.Millisecond
	ReconnectMaxWait  = 10 * time.Second
	ReconnectJitter   = 500 * time.Millisecond
)

// Config configures the bus, embedded or external. cmd/ fills it from the
// environment variables named on each field; the zero value of a field means
// its default. Validate fills the defaults in and checks the rest.
type Config struct {
	// URL of an external NATS server or cluster (VEGA_NATS_URL, comma
	// separated for several). Empty: run the embedded server.
	URL string
	// Token authenticates to the external server (VEGA_NATS_TOKEN). With
	// the embedded server it is the token that server requires of every
	// client, which matters when Listen opens a TCP port.
	Token string
	// CredsFile is a NATS credentials file (VEGA_NATS_CREDS); exclusive with
	// Token.
	CredsFile string
	// RetryOnFailedConnect makes Connect succeed when the external server is
	// not reachable yet and connect in the background (publishes buffer,
	// the relay backs off). False: Connect fails after StartTimeout.
	RetryOnFailedConnect bool

	// DataDir is Vega's data directory (VEGA_DATA_DIR); the embedded server
	// keeps its JetStream store in <DataDir>/nats. Required when URL is empty.
	DataDir string
	// Listen is host:port for the embedded server to accept TCP clients on
	// (VEGA_NATS_LISTEN). Empty: no port at all, in-process clients only.
	Listen string
	// ConnectionName names the connection in server monitoring.
	ConnectionName string
	// StartTimeout bounds the embedded server's start and the first connect.
	StartTimeout time.Duration
	// DrainTimeout bounds the drain in a closer returned by Connect.
	DrainTimeout time.Duration

	// StreamName is the JetStream stream (VEGA_NATS_STREAM, default
	// VEGA_EVENTS).
	StreamName string
	// SubjectPrefix starts every event subject (VEGA_NATS_SUBJECT_PREFIX,
	// default vega.events). The stream captures <SubjectPrefix>.>.
	SubjectPrefix string
	// MaxAge, MaxBytes, Replicas and DuplicateWindow are the stream's limits;
	// see the Default constants. MaxBytes -1 means unlimited.
	MaxAge          time.Duration
	MaxBytes        int64
	Replicas        int
	DuplicateWindow time.Duration

	// PublishWindow and AckTimeout tune the Publisher; see the Default
	// constants.
	PublishWindow int
	AckTimeout    time.Duration
}

// Embedded reports whether the configuration asks for the embedded server.
func (c Config) Embedded() bool { return c.URL == "" }

// StoreDir is where the embedded server keeps JetStream: <DataDir>/nats.
func (c Config) StoreDir() string { return filepath.Join(c.DataDir, "nats") }

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.ConnectionName == "" {
		c.ConnectionName = DefaultConnectionName
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.StreamName == "" {
		c.StreamName = DefaultStreamName
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.PublishWindow <= 0 {
		c.PublishWindow = DefaultPublishWindow
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	return c
}

// Validate returns c with defaults filled in, or an error that names every
// field it refuses.
func (c Config) Validate() (Config, error) {
	c = c.WithDefaults()
	var errs []error
	if c.Embedded() && c.DataDir == "" {
		errs = append(errs, errors.New("invalid DataDir: required for the embedded server"))
	}
	if c.Token != "" && c.CredsFile != "" {
		errs = append(errs, errors.New("invalid Token and CredsFile: they are exclusive"))
	}
	if err := validateStreamName(c.StreamName); err != nil {
		errs = append(errs, err)
	}
	if err := validatePrefix(c.SubjectPrefix); err != nil {
		errs = append(errs, err)
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("invalid MaxAge %s: negative", c.MaxAge))
	}
	if c.MaxBytes < -1 {
		errs = append(errs, fmt.Errorf("invalid MaxBytes %d: use -1 for unlimited", c.MaxBytes))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("invalid Replicas %d: not 1 to 5", c.Replicas))
	}
	if c.DuplicateWindow < MinDuplicateWindow {
		errs = append(errs, fmt.Errorf("invalid DuplicateWindow %s: shorter than %s", c.DuplicateWindow, MinDuplicateWindow))
	}
	if c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge {
		errs = append(errs, fmt.Errorf("invalid DuplicateWindow %s: longer than MaxAge %s", c.DuplicateWindow, c.MaxAge))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("nats config: %w", err)
	}
	return c, nil
}

func validateStreamName(s string) error {
	if s == "" || len(s) > 255 || strings.ContainsAny(s, ".*> \t\r\n/\\") {
		return fmt.Errorf("invalid StreamName %q: must be 1 to 255 characters without '.', '*', '>', '/', '\\' or whitespace", s)
	}
	return nil
}

func validatePrefix(p string) error {
	if p == "" {
		return errors.New("invalid SubjectPrefix: empty")
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("invalid SubjectPrefix %q: must be dot-separated tokens without wildcards or whitespace", p)
		}
	}
	return nil
}
