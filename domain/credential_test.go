package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

func TestScanCredentialLifecycle(t *testing.T) {
	t.Parallel()
	hash := domain.HashToken("vega-scan.scan1.secret")
	t.Run("valid until expiry, for the current attempt only", func(t *testing.T) {
		t.Parallel()
		s := scanIn(t, domain.ScanStateClaimed)
		on(t, s)(s.IssueCredential(s.Fence, hash, at(time.Hour), t0))
		if len(s.Credentials) != 1 || s.Credentials[0].Fence != s.Fence {
			t.Fatalf("credentials = %+v", s.Credentials)
		}
		for _, c := range []struct {
			name string
			hash string
			now  time.Time
			want bool
		}{
			{"issued", hash, at(time.Minute), true},
			{"expired", hash, at(time.Hour), false},
			{"other hash", domain.HashToken("other"), at(time.Minute), false},
		} {
			if got := s.CredentialValid(c.hash, c.now); got != c.want {
				t.Errorf("%s: CredentialValid = %v, want %v", c.name, got, c.want)
			}
		}
		on(t, s)(s.Start(s.Fence, t0))
		if !s.CredentialValid(hash, at(time.Minute)) {
			t.Fatal("credential invalid once running")
		}
		on(t, s)(s.Requeue(3, "", at(2*lease)))
		if s.CredentialValid(hash, at(2*lease)) {
			t.Fatal("credential of a requeued attempt still valid")
		}
		on(t, s)(s.Claim("w2", at(3*lease), at(2*lease)))
		if s.CredentialValid(hash, at(2*lease)) {
			t.Fatal("credential of the previous attempt valid for the new one")
		}
	})
	t.Run("terminal states revoke", func(t *testing.T) {
		t.Parallel()
		for _, end := range []func(s *domain.Scan) ([]domain.Event, error){
			func(s *domain.Scan) ([]domain.Event, error) { return s.Complete(s.Fence, false, "", t0) },
			func(s *domain.Scan) ([]domain.Event, error) { return s.Fail(domain.NoFence, "x", t0) },
			func(s *domain.Scan) ([]domain.Event, error) { return s.Cancel(domain.NoFence, "", t0) },
			func(s *domain.Scan) ([]domain.Event, error) { return s.TimeOut(domain.NoFence, "", t0) },
		} {
			s := scanIn(t, domain.ScanStateRunning)
			on(t, s)(s.IssueCredential(s.Fence, hash, at(time.Hour), t0))
			on(t, s)(end(s))
			if s.CredentialValid(hash, at(time.Minute)) {
				t.Errorf("credential valid in %s", s.State)
			}
		}
	})
	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		s := scanIn(t, domain.ScanStateRunning)
		_, err := s.IssueCredential(s.Fence, "not-a-hash", at(time.Hour), t0)
		wantField(t, err, "token_hash")
		_, err = s.IssueCredential(s.Fence, strings.ToUpper(hash), at(time.Hour), t0)
		wantField(t, err, "token_hash")
		_, err = s.IssueCredential(s.Fence, hash, t0, t0)
		wantField(t, err, "expires_at")
		var fe *domain.FenceError
		if _, err = s.IssueCredential(s.Fence+1, hash, at(time.Hour), t0); !errors.As(err, &fe) {
			t.Fatalf("stale fence: err = %v, want *FenceError", err)
		}
		on(t, s)(s.IssueCredential(s.Fence, hash, at(time.Hour), t0))
		if _, err = s.IssueCredential(s.Fence, hash, at(time.Hour), t0); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("same hash twice: err = %v, want ErrConflict", err)
		}
		for i := 1; i < domain.MaxCredentialsPerAttempt; i++ {
			on(t, s)(s.IssueCredential(s.Fence, domain.HashToken(strings.Repeat("t", i)), at(time.Hour), t0))
		}
		if _, err = s.IssueCredential(s.Fence, domain.HashToken("one too many"), at(time.Hour), t0); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("over the cap: err = %v, want ErrConflict", err)
		}
		for _, st := range []domain.ScanState{domain.ScanStateRequested, domain.ScanStateCompleted} {
			s := scanIn(t, st)
			if _, err := s.IssueCredential(s.Fence, hash, at(time.Hour), t0); !errors.Is(err, domain.ErrConflict) {
				t.Errorf("issue in %s: err = %v, want ErrConflict", st, err)
			}
		}
	})
}

func TestScanLateLLMUsageIsRecordedWithoutBudgetEvent(t *testing.T) {
	t.Parallel()
	s := scanIn(t, domain.ScanStateCompleted)
	s.Profile.LLMBudget.MaxRequests = 1
	events := on(t, s)(s.RecordLLMUsage("m", domain.LLMUsage{InputTokens: 3, Requests: 1}, t0))
	if len(events) != 1 || events[0].EventName() != "LLMUsageRecorded" {
		t.Fatalf("events = %v, want one LLMUsageRecorded", events)
	}
	if s.LLMUsage.Requests != 1 || s.BudgetExceeded {
		t.Fatalf("usage = %+v, exceeded = %v", s.LLMUsage, s.BudgetExceeded)
	}
	never := scanIn(t, domain.ScanStateCancelled)
	if _, err := never.RecordLLMUsage("m", domain.LLMUsage{Requests: 1}, t0); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("usage of a scan never claimed: err = %v, want ErrConflict", err)
	}
}
