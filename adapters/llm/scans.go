package llm

import (
	"context"
	"sync"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

// DefaultAuthCacheTTL is how long the proxy trusts a folded scan before it
// reads the stream again: the delay after which a scan's end (or requeue)
// revokes its tokens in a running proxy. Expiry needs no refold.
const DefaultAuthCacheTTL = 2 * time.Second

// idleEviction is how long an unused scan entry stays cached.
const idleEviction = 10 * time.Minute

// scanEntry is one scan as this proxy knows it.
type scanEntry struct {
	load     sync.Mutex // one fold at a time
	mu       sync.Mutex
	scan     *domain.Scan // immutable once stored
	loadedAt time.Time
	lastUsed time.Time
	ledger   *ledger
}

// scanCache folds scan streams on demand and keeps them for a short TTL.
// It is safe for concurrent use.
type scanCache struct {
	repo   *commands.Repository[*domain.Scan]
	ttl    time.Duration
	clock  func() time.Time
	budget domain.LLMBudget // installation defaults

	mu sync.Mutex
	m  map[string]*scanEntry
}

// get returns the scan, folded at most ttl ago, and its ledger (created on
// first use from the stream's usage total).
func (c *scanCache) get(ctx context.Context, id string) (*domain.Scan, *ledger, error) {
	now := c.clock()
	c.mu.Lock()
	e, ok := c.m[id]
	if !ok {
		e = &scanEntry{}
		c.m[id] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	fresh := e.scan != nil && now.Sub(e.loadedAt) < c.ttl
	s, l := e.scan, e.ledger
	e.lastUsed = now
	e.mu.Unlock()
	if fresh {
		return s, l, nil
	}
	e.load.Lock()
	defer e.load.Unlock()
	e.mu.Lock()
	if e.scan != nil && c.clock().Sub(e.loadedAt) < c.ttl { // folded while we waited
		s, l = e.scan, e.ledger
		e.mu.Unlock()
		return s, l, nil
	}
	e.mu.Unlock()
	s, _, err := c.repo.Load(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	exceeded := ""
	if s.BudgetExceeded {
		exceeded = s.BudgetLimit
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scan, e.loadedAt = s, c.clock()
	if e.ledger == nil {
		e.ledger = newLedger(effective(s.Profile.LLMBudget, c.budget), s.LLMUsage, exceeded)
	} else {
		e.ledger.observe(s.LLMUsage, exceeded)
	}
	return s, e.ledger, nil
}

// evict forgets entries unused for idleEviction with nothing in flight.
func (c *scanCache) evict() {
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		e.mu.Lock()
		idle := now.Sub(e.lastUsed) > idleEviction
		busy := false
		if e.ledger != nil {
			_, n := e.ledger.snapshot()
			busy = n > 0
		}
		e.mu.Unlock()
		if idle && !busy {
			delete(c.m, id)
		}
	}
}
