package domain

import (
	"errors"
	"fmt"
)

// kind is a sentinel error that belongs to a broader kind: errors.Is on it
// also matches its parent, so callers that map errors to HTTP statuses can
// test for ErrConflict alone.
type kind struct {
	msg    string
	parent error
}

// Error returns the sentinel's message.
func (k *kind) Error() string { return k.msg }

// Unwrap returns the broader kind, so errors.Is matches it too.
func (k *kind) Unwrap() error { return k.parent }

var (
	// ErrNotFound reports that an aggregate, or an entity inside one (a
	// snapshot, a member, a token), does not exist or was removed.
	ErrNotFound = errors.New("not found")

	// ErrConflict reports that a command is well formed but the aggregate's
	// current state refuses it: an archived project, a duplicate member, an
	// already revoked token, a held lease. It maps to HTTP 409.
	ErrConflict = errors.New("conflict")

	// ErrInvalidArgument reports bad input; errors carrying it are
	// *InvalidArgumentError values that name the field. It maps to HTTP 400.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrInvalidHistory reports that Apply or a Fold function met an event
	// that cannot follow the aggregate's history: another aggregate's event,
	// an event before the creation event, an illegal state change. Seeing it
	// means a bug or a corrupt stream; it maps to HTTP 500.
	ErrInvalidHistory = errors.New("invalid event history")

	// ErrIllegalTransition reports a scan state change that the state machine
	// does not allow. errors.Is(ErrIllegalTransition, ErrConflict) is true.
	ErrIllegalTransition error = &kind{"illegal state transition", ErrConflict}

	// ErrStaleFence reports a runner-side write that presented a fencing
	// token other than the scan's current one: a runner that lost its claim
	// must not write. errors.Is(ErrStaleFence, ErrConflict) is true.
	ErrStaleFence error = &kind{"stale fencing token", ErrConflict}
)

// TransitionError reports an illegal scan state transition. It names both
// states. errors.Is matches ErrIllegalTransition and ErrConflict.
type TransitionError struct {
	From, To ScanState
}

// Error names both states.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("illegal scan transition from %s to %s", e.From, e.To)
}

// Unwrap returns ErrIllegalTransition.
func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }

// InvalidArgumentError reports one bad input field. Field uses the API's JSON
// names (for example "source.url" or "include[2]"). errors.Is matches
// ErrInvalidArgument.
type InvalidArgumentError struct {
	Field  string
	Reason string
}

// Error names the field and the reason.
func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidArgument.
func (e *InvalidArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// FenceError reports a runner-side write with a fencing token that is not the
// scan's current one. errors.Is matches ErrStaleFence and ErrConflict.
type FenceError struct {
	ScanID    string
	Presented uint64
	Current   uint64
}

// Error names the scan and both tokens.
func (e *FenceError) Error() string {
	return fmt.Sprintf("scan %s: fencing token %d is stale (current %d)", e.ScanID, e.Presented, e.Current)
}

// Unwrap returns ErrStaleFence.
func (e *FenceError) Unwrap() error { return ErrStaleFence }

func invalid(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrConflict)...)
}

func notFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrNotFound)...)
}

// badHistory reports an event that an aggregate cannot apply at its current
// version: another aggregate's event, a second creation event, an event before
// the creation event, or an illegal state change.
func badHistory(aggregate string, version int, e Event, reason string) error {
	name := "<nil>"
	if e != nil {
		name = e.EventName()
	}
	return fmt.Errorf("%s at version %d cannot apply %s: %s: %w", aggregate, version, name, reason, ErrInvalidHistory)
}

// checkStart enforces that a stream starts with its creation event and has
// only one.
func checkStart(aggregate string, version int, e Event, creation bool) error {
	switch {
	case e == nil:
		return badHistory(aggregate, version, e, "nil event")
	case creation && version != 0:
		return badHistory(aggregate, version, e, "stream already started")
	case !creation && version == 0:
		return badHistory(aggregate, version, e, "stream must start with its creation event")
	}
	return nil
}
