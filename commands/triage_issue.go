package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// TriageIssue records the request's actor's triage decision on an issue.
type TriageIssue struct {
	IssueID   string
	Status    domain.Triage
	Note      string    // optional
	ExpiresAt time.Time // required with accepted_risk, zero otherwise
}

type triageIssueHandler struct{ d *deps }

// Handle decides domain.Issue.Triage. It returns an
// *domain.InvalidArgumentError naming "issue_id", "status", "note" or
// "expires_at", and domain.ErrNotFound for an unknown issue.
func (h triageIssueHandler) Handle(ctx context.Context, cmd TriageIssue) (IssueResult, error) {
	actor := RequestFromContext(ctx).Actor
	i, res, err := update(ctx, h.d, h.d.Issues, "triage issue", cmd.IssueID,
		func(i *domain.Issue, now time.Time) ([]domain.Event, error) {
			return i.Triage(actor, cmd.Status, cmd.Note, cmd.ExpiresAt.UTC(), now)
		})
	return IssueResult{Result: res, Issue: i}, err
}
