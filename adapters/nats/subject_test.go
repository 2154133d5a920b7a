package nats_test

import (
	"strings"
	"testing"
	"time"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/eventstore"
)

func TestEncodeToken(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"scan-01JABC", "scan-01JABC"},
		{"repository-acme.corp:web", "repository-acme%2Ecorp:web"},
		{"ScanRequested", "ScanRequested"},
		{"a b*c>d", "a%20b%2Ac%3Ed"},
		{"100%", "100%25"},
		{"tab\tnl\n", "tab%09nl%0A"},
		{"é", "%C3%A9"},
		{"", "%"},
	}
	for _, tc := range tests {
		got := vnats.EncodeToken(tc.in)
		if got != tc.want {
			t.Errorf("EncodeToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.ContainsAny(got, ".*> \t\r\n") {
			t.Errorf("EncodeToken(%q) = %q is not a valid token", tc.in, got)
		}
		back, err := vnats.DecodeToken(got)
		if err != nil || back != tc.in {
			t.Errorf("DecodeToken(%q) = %q, %v; want %q", got, back, err, tc.in)
		}
	}
}

func TestDecodeTokenRejects(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"a.b", "%2", "%zz", "a b", "%2e"} {
		if got, err := vnats.DecodeToken(tok); err == nil {
			t.Errorf("DecodeToken(%q) = %q, want an error", tok, got)
		}
	}
}

func FuzzTokenRoundTrip(f *testing.F) {
	for _, s := range []string{"", "scan-01J", "a.b:c", "%%", "x y*>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := vnats.EncodeToken(s)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("EncodeToken(%q) = %q", s, tok)
		}
		back, err := vnats.DecodeToken(tok)
		if err != nil || back != s {
			t.Fatalf("round trip %q -> %q -> %q, %v", s, tok, back, err)
		}
	})
}

func TestSubjectFilters(t *testing.T) {
	t.Parallel()
	const p = "vega.events"
	s := eventstore.StreamID("repository-a.b")
	tests := []struct{ name, got, want string }{
		{"subject", vnats.Subject(p, s, "SnapshotCaptured"), "vega.events.repository.repository-a%2Eb.SnapshotCaptured"},
		{"all", vnats.AllSubject(p), "vega.events.>"},
		{"category", vnats.CategorySubject(p, "scan"), "vega.events.scan.>"},
		{"stream", vnats.StreamSubject(p, s), "vega.events.repository.repository-a%2Eb.*"},
		{"type", vnats.TypeSubject(p, "scan", "ScanRequested"), "vega.events.scan.*.ScanRequested"},
		{"type any category", vnats.TypeSubject(p, "", "ScanRequested"), "vega.events.*.*.ScanRequested"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if _, _, err := vnats.SubjectParts(p, "other.prefix.scan.scan-1.X"); err == nil {
		t.Errorf("SubjectParts accepted a subject under another prefix")
	}
	if _, _, err := vnats.SubjectParts(p, p+".scan.scan-1"); err == nil {
		t.Errorf("SubjectParts accepted a subject with a missing token")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := vnats.Config{URL: "nats://x"}
	tests := []struct {
		name    string
		mutate  func(*vnats.Config)
		wantErr string
	}{
		{"defaults", func(*vnats.Config) {}, ""},
		{"embedded needs data dir", func(c *vnats.Config) { c.URL = "" }, "DataDir"},
		{"stream name with dot", func(c *vnats.Config) { c.StreamName = "A.B" }, "StreamName"},
		{"prefix with wildcard", func(c *vnats.Config) { c.SubjectPrefix = "vega.*" }, "SubjectPrefix"},
		{"prefix with empty token", func(c *vnats.Config) { c.SubjectPrefix = "vega..x" }, "SubjectPrefix"},
		{"short dedup window", func(c *vnats.Config) { c.DuplicateWindow = time.Minute }, "DuplicateWindow"},
		{"dedup window beyond max age", func(c *vnats.Config) { c.MaxAge = 3 * time.Minute; c.DuplicateWindow = 4 * time.Minute }, "MaxAge"},
		{"replicas", func(c *vnats.Config) { c.Replicas = 7 }, "Replicas"},
		{"max bytes", func(c *vnats.Config) { c.MaxBytes = -5 }, "MaxBytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			got, err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if got.StreamName != vnats.DefaultStreamName || got.SubjectPrefix != vnats.DefaultSubjectPrefix ||
					got.DuplicateWindow != vnats.DefaultDuplicateWindow || got.MaxAge != vnats.DefaultMaxAge {
					t.Errorf("defaults not filled in: %+v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate: %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}
