package eventstore

import (
	"context"
)

// Follower is what Follow needs of a store.
type Follower interface {
	AllReader
	Waiter
}

// Follow reads the global order from q.After, hands each page to fn, and then
// waits for more, until ctx ends (it returns ctx.Err()) or fn or a read fails
// (it returns that error). fn sees every matching event exactly once, in
// order; q.After advances past each page fn accepted.
func Follow(ctx context.Context, s Follower, q Query, fn func(ctx context.Context, page []RecordedEvent, next Position) error) error {
	for {
		page, next, err := s.ReadAll(ctx, q)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			if err := fn(ctx, page, next); err != nil {
				return err
			}
		}
		q.After = next
		if len(page) > 0 && len(page) >= limitOrDefault(q.Limit) {
			continue
		}
		if err := s.Wait(ctx, q.After); err != nil {
			return err
		}
	}
}

func limitOrDefault(n int) int {
	if n <= 0 {
		return DefaultReadLimit
	}
	return n
}
