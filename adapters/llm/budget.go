package llm

import (
	"math"
	"sync"

	"github.com/vega-sec/vega/domain"
)

// Defaults of the installation-wide budget (ProxyConfig.DefaultBudget): a
// threat profile's limit that is zero (not set) takes the default's.
const (
	DefaultMaxTokens     = 2_000_000
	DefaultMaxCostUSD    = 10.0
	DefaultMaxRequests   = 2_000
	DefaultMaxConcurrent = 4
)

// DefaultBudget returns the installation-wide default limits.
func DefaultBudget() domain.LLMBudget {
	return domain.LLMBudget{MaxTokens: DefaultMaxTokens, MaxCostUSD: DefaultMaxCostUSD,
		MaxRequests: DefaultMaxRequests, MaxConcurrent: DefaultMaxConcurrent}
}

// Reservation sizes.
const (
	// CharsPerToken turns the bytes of a request's messages (as JSON, so
	// quotes and keys count too: an over-estimate) into an input-token
	// estimate.
	CharsPerToken = 4
	// TokensPerRequest is added to every input estimate for the provider's
	// own framing.
	TokensPerRequest = 16
	// DefaultMaxOutputTokens is the output reserved for a request that sets
	// no max_tokens; the request is sent with that (or a smaller, clamped)
	// max_tokens.
	DefaultMaxOutputTokens = 4096
	// MinOutputTokens is the least output worth forwarding a request for:
	// when less is left, the budget counts as exhausted.
	MinOutputTokens = 16
)

// Limit names, as ScanBudgetExceeded and the 429 body give them.
const (
	LimitTokens     = "max_tokens"
	LimitCost       = "max_cost_usd"
	LimitRequests   = "max_requests"
	LimitConcurrent = "max_concurrent"
)

// effective returns the profile's limits with every zero limit replaced by
// def's.
func effective(profile, def domain.LLMBudget) domain.LLMBudget {
	if profile.MaxTokens == 0 {
		profile.MaxTokens = def.MaxTokens
	}
	if profile.MaxCostUSD == 0 {
		profile.MaxCostUSD = def.MaxCostUSD
	}
	if profile.MaxRequests == 0 {
		profile.MaxRequests = def.MaxRequests
	}
	if profile.MaxConcurrent == 0 {
		profile.MaxConcurrent = def.MaxConcurrent
	}
	return profile
}

// refusal says why a request does not fit: Limit names the limit; Reserved
// is true when it would fit once the requests in flight settle (their
// reservations hold the rest of the budget), false when the budget is spent.
type refusal struct {
	Limit    string
	Reserved bool
}

// ledger is one scan's budget in this process: what was spent (folded
// from the scan stream on first use, then grown by every settled call) and
// what requests in flight have reserved. Every request reserves its worst
// case before it is forwarded, and the sum of what is spent and reserved
// never passes a limit, so concurrent requests cannot overshoot (as long as
// the provider bills no more than it was allowed: input within the
// estimate, output within max_tokens). It is safe for concurrent use.
type ledger struct {
	mu        sync.Mutex
	limits    domain.LLMBudget
	used      domain.LLMUsage
	resTokens int64
	resCost   float64
	resReqs   int64
	inflight  int
	exceeded  string // the limit recorded as exceeded, "" while not
	reported  bool   // ExceedBudget was sent by this process
}

func newLedger(limits domain.LLMBudget, used domain.LLMUsage, exceeded string) *ledger {
	return &ledger{limits: limits, used: used, exceeded: exceeded}
}

// observe merges the usage total read from the scan stream: another proxy
// may have recorded usage for the scan. Taking the larger figure never
// counts this process's usage twice (the stream holds at most what it
// flushed), so the ledger stays a lower bound of the truth.
func (l *ledger) observe(total domain.LLMUsage, exceeded string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used.InputTokens = max(l.used.InputTokens, total.InputTokens)
	l.used.OutputTokens = max(l.used.OutputTokens, total.OutputTokens)
	l.used.CostUSD = math.Max(l.used.CostUSD, total.CostUSD)
	l.used.Requests = max(l.used.Requests, total.Requests)
	if l.exceeded == "" {
		l.exceeded = exceeded
	}
}

// reservation is one request's hold on a ledger until it settles.
type reservation struct {
	l         *ledger
	price     Price
	inTokens  int64 // the input estimate
	outTokens int64 // the max_tokens sent upstream
	cost      float64
	once      sync.Once
}

// reserve holds the budget for one request whose input is estimated at in
// tokens and which asks for up to want output tokens (0: the default). It
// returns the reservation and the max_tokens to send, or a refusal.
func (l *ledger) reserve(in, want int64, price Price) (*reservation, *refusal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.limits
	if l.exceeded != "" {
		return nil, &refusal{Limit: l.exceeded}
	}
	if b.MaxConcurrent > 0 && l.inflight >= b.MaxConcurrent {
		return nil, &refusal{Limit: LimitConcurrent, Reserved: true}
	}
	if want <= 0 {
		want = DefaultMaxOutputTokens
	}
	// Requests.
	if b.MaxRequests > 0 && l.used.Requests+l.resReqs+1 > b.MaxRequests {
		return nil, &refusal{Limit: LimitRequests, Reserved: l.used.Requests+1 <= b.MaxRequests}
	}
	out := want
	// Tokens: input plus output within what is neither spent nor reserved.
	if b.MaxTokens > 0 {
		spent := l.used.InputTokens + l.used.OutputTokens
		if left := b.MaxTokens - spent - l.resTokens - in; left < out {
			out = left
		}
		if out < min(want, MinOutputTokens) {
			return nil, &refusal{Limit: LimitTokens, Reserved: b.MaxTokens-spent-in >= min(want, MinOutputTokens)}
		}
	}
	// Cost: the input's cost plus the output's at the model's price.
	if b.MaxCostUSD > 0 {
		left := b.MaxCostUSD - l.used.CostUSD - l.resCost - price.Cost(in, 0)
		if price.Output > 0 {
			if n := int64(math.Floor(left * 1e6 / price.Output)); n < out {
				out = n
			}
		} else if left < 0 {
			out = -1
		}
		if out < min(want, MinOutputTokens) {
			free := b.MaxCostUSD - l.used.CostUSD - price.Cost(in, min(want, MinOutputTokens))
			return nil, &refusal{Limit: LimitCost, Reserved: free >= 0}
		}
	}
	r := &reservation{l: l, price: price, inTokens: in, outTokens: out, cost: price.Cost(in, out)}
	l.resTokens += in + out
	l.resCost += r.cost
	l.resReqs++
	l.inflight++
	return r, nil
}

// settle releases the reservation and adds actual to what was spent. Only
// the first call counts; it returns actual with its cost filled in from the
// model's price.
func (r *reservation) settle(in, out int64) domain.LLMUsage {
	u := domain.LLMUsage{InputTokens: in, OutputTokens: out, CostUSD: r.price.Cost(in, out), Requests: 1}
	r.once.Do(func() {
		l := r.l
		l.mu.Lock()
		defer l.mu.Unlock()
		l.resTokens -= r.inTokens + r.outTokens
		l.resCost -= r.cost
		l.resReqs--
		l.inflight--
		l.used = l.used.Add(u)
	})
	return u
}

// exhaust marks the budget exceeded on limit and reports whether this
// process should record it (the first time only).
func (l *ledger) exhaust(limit string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.exceeded == "" {
		l.exceeded = limit
	}
	first := !l.reported
	l.reported = true
	return first
}

// snapshot returns what is spent and how many requests are in flight.
func (l *ledger) snapshot() (domain.LLMUsage, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used, l.inflight
}
