package blob_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vega-sec/vega/adapters/blob"
)

func TestValidateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key string
		ok  bool
	}{
		{"snapshots/01J8Z/sha256:0a1b.tar.gz", true},
		{"a", true},
		{"a.b/c_d-e:f", true},
		{"x..y", true}, // dots inside a component are fine
		{strings.Repeat("k", blob.MaxKeyLength), true},
		{"", false},
		{strings.Repeat("k", blob.MaxKeyLength+1), false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"..", false},
		{"a/../b", false},
		{".", false},
		{".tmp/x", false},
		{"a b", false},
		{"a\\b", false},
		{"ü", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		err := blob.ValidateKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, not ErrInvalidKey", tt.key, err)
		}
	}
	for _, p := range []string{"", "a", "a/", "snapshots/01", "a-"} {
		if err := blob.ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"/", "../", "a//", ".x", "a/.", "a b"} {
		if err := blob.ValidatePrefix(p); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
}
