package commands

import (
	"context"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Request is the identity of the request a command serves. It travels in the
// context (WithRequest) and ends up, unchanged, in the metadata of every
// event the command appends.
type Request struct {
	// Actor is the principal on whose behalf the command runs: a user's
	// principal, or a system actor such as "system:worker". Required.
	Actor string
	// CorrelationID ties together everything one request caused. Empty: the
	// command's own ID.
	CorrelationID string
	// CausationID is the ID of what caused the command: the triggering
	// event's ID for a process manager. Empty: the command's own ID (a fresh
	// ULID per command).
	CausationID string
}

type requestKey struct{}

// WithRequest returns a context carrying r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFromContext returns the request identity carried by ctx, or the
// zero Request when there is none.
func RequestFromContext(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}

// RequestFromEvent returns the identity of a command that a process manager
// issues in reaction to event e, on behalf of actor: same correlation as e,
// caused by e.
func RequestFromEvent(actor string, e eventstore.RecordedEvent) Request {
	return Request{Actor: actor, CorrelationID: e.Metadata.CorrelationID, CausationID: e.ID}
}

// metadata returns the eventstore metadata of r.
func (r Request) metadata() eventstore.Metadata {
	return eventstore.Metadata{Actor: r.Actor, CorrelationID: r.CorrelationID, CausationID: r.CausationID}
}

// validate refuses a request without a well-formed actor.
func (r Request) validate() error {
	if r.Actor == "" {
		return &domain.InvalidArgumentError{Field: "actor", Reason: "is required: every command runs on behalf of a principal"}
	}
	return domain.ValidateID("actor", r.Actor)
}

// withDefaults fills empty correlation and causation IDs with commandID.
func (r Request) withDefaults(commandID string) Request {
	if r.CausationID == "" {
		r.CausationID = commandID
	}
	if r.CorrelationID == "" {
		r.CorrelationID = commandID
	}
	return r
}
