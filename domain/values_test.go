package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vega-sec/vega/domain"
)

func TestSeverityOrder(t *testing.T) {
	t.Parallel()
	all := domain.Severities()
	for i, s := range all {
		for j, min := range all {
			// all is most severe first: s is at least min when i <= j.
			if got, want := s.AtLeast(min), i <= j; got != want {
				t.Errorf("%s.AtLeast(%s) = %v, want %v", s, min, got, want)
			}
		}
		if got, err := domain.ParseSeverity(string(s)); err != nil || got != s {
			t.Errorf("ParseSeverity(%s) = %v, %v", s, got, err)
		}
	}
	if domain.Severity("urgent").AtLeast(domain.SeverityInfo) {
		t.Error("an unknown severity is at least info")
	}
	_, err := domain.ParseSeverity("urgent")
	wantField(t, err, "severity")
}

func TestRoleOrder(t *testing.T) {
	t.Parallel()
	roles := []domain.Role{domain.RoleViewer, domain.RoleEditor, domain.RoleOwner}
	for i, r := range roles {
		for j, min := range roles {
			if got, want := r.AtLeast(min), i >= j; got != want {
				t.Errorf("%s.AtLeast(%s) = %v, want %v", r, min, got, want)
			}
		}
	}
	if domain.Role("admin").AtLeast(domain.RoleViewer) {
		t.Error("an unknown role grants viewer")
	}
	_, err := domain.ParseRole("admin")
	wantField(t, err, "role")
}

func TestFindingValidate(t *testing.T) {
	t.Parallel()
	if err := finding("f1", "fp", domain.SeverityHigh).Validate(); err != nil {
		t.Fatalf("valid finding: %v", err)
	}
	tests := []struct {
		name  string
		field string
		mod   func(*domain.Finding)
	}{
		{"no id", "id", func(f *domain.Finding) { f.ID = "" }},
		{"no fingerprint", "fingerprint", func(f *domain.Finding) { f.Fingerprint = "" }},
		{"long fingerprint", "fingerprint", func(f *domain.Finding) { f.Fingerprint = strings.Repeat("a", domain.MaxFingerprintLength+1) }},
		{"no rule", "rule_id", func(f *domain.Finding) { f.RuleID = "" }},
		{"no title", "title", func(f *domain.Finding) { f.Title = "" }},
		{"bad severity", "severity", func(f *domain.Finding) { f.Severity = "urgent" }},
		{"bad cwe", "cwe", func(f *domain.Finding) { f.CWE = "79" }},
		{"no engine", "engine", func(f *domain.Finding) { f.Engine = "" }},
		{"no file", "file", func(f *domain.Finding) { f.File = "" }},
		{"dot-dot file", "file", func(f *domain.Finding) { f.File = "a/../../etc/passwd" }},
		{"absolute file", "file", func(f *domain.Finding) { f.File = "/etc/passwd" }},
		{"unclean file", "file", func(f *domain.Finding) { f.File = "a//b" }},
		{"backslash file", "file", func(f *domain.Finding) { f.File = `..\x` }},
		{"zero start", "start_line", func(f *domain.Finding) { f.StartLine = 0 }},
		{"end before start", "end_line", func(f *domain.Finding) { f.StartLine, f.EndLine = 5, 4 }},
		{"long snippet", "snippet", func(f *domain.Finding) { f.Snippet = strings.Repeat("s", domain.MaxSnippetLength+1) }},
		{"control in message", "message", func(f *domain.Finding) { f.Message = "a\x00b" }},
		{"confidence over 1", "confidence", func(f *domain.Finding) { f.Confidence = 1.5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := finding("f1", "fp", domain.SeverityHigh)
			tt.mod(&f)
			wantField(t, f.Validate(), tt.field)
		})
	}
}

func TestValidateRelativePath(t *testing.T) {
	t.Parallel()
	for p, ok := range map[string]bool{
		"main.go": true, "src/a/b.py": true, ".github/workflows/ci.yml": true, "a..b/c": true,
		"": false, "/abs": false, "..": false, "a/..": false, "../a": false, ".": false, "./a": false,
		"a/": false, "a//b": false, `a\b`: false, "a\nb": false, "\xff": false,
	} {
		err := domain.ValidateRelativePath("file", p)
		if ok != (err == nil) {
			t.Errorf("ValidateRelativePath(%q) = %v, want ok=%v", p, err, ok)
		}
		if err != nil {
			wantField(t, err, "file")
		}
	}
}

func TestValidateNameAndText(t *testing.T) {
	t.Parallel()
	if got, err := domain.ValidateName("name", "  Payments  "); err != nil || got != "Payments" {
		t.Fatalf("ValidateName = %q, %v", got, err)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("é", domain.MaxNameLength+1), "a\nb", "\xff"} {
		_, err := domain.ValidateName("name", bad)
		wantField(t, err, "name")
	}
	if _, err := domain.ValidateName("name", strings.Repeat("é", domain.MaxNameLength)); err != nil {
		t.Fatalf("name of exactly MaxNameLength runes: %v", err)
	}
	if _, err := domain.ValidateText("note", "line 1\nline 2\ttab", domain.MaxNoteLength); err != nil {
		t.Fatalf("multi-line text: %v", err)
	}
	_, err := domain.ValidateText("note", "bell\a", domain.MaxNoteLength)
	wantField(t, err, "note")
}

func TestValidateID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"admin", "01JABCDEF0123456789ABCDEFG", "worker-1:a.b_c"} {
		if err := domain.ValidateID("id", ok); err != nil {
			t.Errorf("ValidateID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a b", "a/b", "é", strings.Repeat("a", domain.MaxIDLength+1)} {
		wantField(t, domain.ValidateID("id", bad), "id")
	}
}

func TestValidateGitURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url    string
		policy domain.SourcePolicy
		ok     bool
	}{
		{"https://github.com/vega-sec/vega.git", domain.SourcePolicy{}, true},
		{"https://[::1]:8443/repo.git", domain.SourcePolicy{}, true},
		{"http://127.0.0.1:3000/repo.git", domain.SourcePolicy{}, false},
		{"http://127.0.0.1:3000/repo.git", domain.SourcePolicy{AllowHTTP: true}, true},
		{"-uhttps://x/y", domain.SourcePolicy{}, false},
		{"--upload-pack=touch /tmp/p", domain.SourcePolicy{}, false},
		{"ext::sh -c touch% /tmp/pwned", domain.SourcePolicy{}, false},
		{"ext::sh", domain.SourcePolicy{AllowHTTP: true}, false},
		{"fd::3", domain.SourcePolicy{}, false},
		{"file:///etc/passwd", domain.SourcePolicy{}, false},
		{"/srv/git/repo", domain.SourcePolicy{}, false},
		{"../repo", domain.SourcePolicy{}, false},
		{"git@github.com:a/b.git", domain.SourcePolicy{}, false},
		{"ssh://git@github.com/a/b.git", domain.SourcePolicy{}, false},
		{"https://user:token@github.com/a/b.git", domain.SourcePolicy{}, false},
		{"https://token@github.com/a/b.git", domain.SourcePolicy{}, false},
		{"https:///nohost", domain.SourcePolicy{}, false},
		{"https:opaque", domain.SourcePolicy{}, false},
		{"https://github.com/a b", domain.SourcePolicy{}, false},
		{"", domain.SourcePolicy{}, false},
	}
	for _, tt := range tests {
		err := domain.ValidateGitURL("source.url", tt.url, tt.policy)
		if tt.ok != (err == nil) {
			t.Errorf("ValidateGitURL(%q, %+v) = %v, want ok=%v", tt.url, tt.policy, err, tt.ok)
		}
		if err != nil {
			wantField(t, err, "source.url")
		}
	}
}

func TestValidateGitRef(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "main", "release/1.2", "v1.0.0", "0123456789abcdef0123456789abcdef01234567"} {
		if err := domain.ValidateGitRef("ref", ok); err != nil {
			t.Errorf("ValidateGitRef(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"-main", "--upload-pack=x", "a..b", "a b", "a~1", "a^", "a:b", "HEAD@{1}", "/main", "main/", "x.lock", "a\\b"} {
		wantField(t, domain.ValidateGitRef("ref", bad), "ref")
	}
}

func TestErrorsCompose(t *testing.T) {
	t.Parallel()
	if !errors.Is(domain.ErrIllegalTransition, domain.ErrConflict) || !errors.Is(domain.ErrStaleFence, domain.ErrConflict) {
		t.Fatal("ErrIllegalTransition and ErrStaleFence must be conflicts")
	}
	err := error(&domain.TransitionError{From: domain.ScanStateCompleted, To: domain.ScanStateRunning})
	if errors.Is(err, domain.ErrInvalidArgument) || errors.Is(err, domain.ErrNotFound) {
		t.Fatal("TransitionError matches unrelated sentinels")
	}
	if errors.Is(&domain.InvalidArgumentError{Field: "x"}, domain.ErrConflict) {
		t.Fatal("InvalidArgumentError matches ErrConflict")
	}
}
