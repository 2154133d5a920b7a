package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vega-sec/vega/eventstore"
)

// broadcast wakes every waiter at once: fire closes the current channel and
// installs a fresh one.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// Wait implements eventstore.Waiter. It returns at once when a visible event
// follows after; otherwise it waits for a notification (from this process or
// another), the poll interval, or the end of ctx.
func (s *Store) Wait(ctx context.Context, after eventstore.Position) error {
	woken := s.wake.wait() // before the check, so no wake-up falls between
	var more bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events
		WHERE (transaction_id, position) > ($1::xid8, $2) AND `+visible+`)`,
		after.Tx, after.Seq).Scan(&more)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("wait: %w", err)
	}
	if more {
		return nil
	}
	t := time.NewTimer(s.opts.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-woken:
	case <-t.C:
	}
	return nil
}

// notifyInterval is the least time between two NOTIFYs of one store: appends
// that commit meanwhile share the next one. A NOTIFY is a transaction of its
// own that serialises on a cluster-wide lock, so one per append would double
// the transactions of a busy store; this bounds them to 1/notifyInterval a
// second and adds at most notifyInterval to a remote reader's wake-up.
const notifyInterval = 2 * time.Millisecond

// notify sends one NOTIFY per burst of appends, after they committed.
func (s *Store) notify(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, '')`, s.channel); err != nil && ctx.Err() == nil {
			s.log.Warn("postgres: notify failed; readers in other processes fall back to polling", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(notifyInterval):
		}
	}
}

// listen holds one connection in LISTEN and wakes local waiters on each
// notification; it reconnects with backoff and wakes waiters on every
// reconnect, since notifications sent meanwhile are lost.
func (s *Store) listen(ctx context.Context) {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("postgres: listen connection lost; polling until it returns", "err", err, "retry_in", backoff)
		s.wake.fire()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The LISTEN session never goes back to the pool.
	c := conn.Hijack()
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	s.wake.fire()
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake.fire()
	}
}
