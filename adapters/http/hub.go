package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/vega-sec/vega/eventstore"
)

// Hub limits and intervals.
const (
	// MaxHubProjectCache bounds the Hub's memory of which project each
	// stream belongs to; past it the memory starts over (and is refilled
	// from creation events and lookups).
	MaxHubProjectCache = 100_000
	// HubRestartMin and HubRestartMax bound the backoff between restarts
	// of a failed Feed.
	HubRestartMin = 100 * time.Millisecond
	HubRestartMax = 10 * time.Second
)

// activityCategories are the stream categories of the activity feed.
// Access streams belong to no project and never appear in it.
var activityCategories = []string{"project", "repository", "scan", "issue"}

func inActivity(stream eventstore.StreamID) bool {
	switch stream.Category() {
	case "project", "repository", "scan", "issue":
		return true
	}
	return false
}

// ProjectResolver returns the project of a stream of the activity
// categories, or an error when it cannot tell.
type ProjectResolver func(ctx context.Context, stream eventstore.StreamID) (string, error)

// Hub fans the events of one Feed out to subscriptions: those of one scan
// stream, and those of the activity feed (each filtered by its principal's
// projects). Delivery never blocks: a subscription whose bounded queue is
// full is marked overflowed and dropped, and the others go on. It is safe
// for concurrent use.
type Hub struct {
	feed    Feed
	resolve ProjectResolver
	log     *slog.Logger
	restart func()

	mu       sync.Mutex
	scans    map[eventstore.StreamID]map[*Subscription]struct{}
	activity map[*Subscription]struct{}

	cacheMu  sync.Mutex
	projects map[eventstore.StreamID]string
}

// NewHub returns a Hub fed by feed (nil: only Publish feeds it) that
// resolves streams to projects with resolve. log may be nil.
func NewHub(feed Feed, resolve ProjectResolver, log *slog.Logger) *Hub {
	if log == nil {
		log = discard
	}
	return &Hub{feed: feed, resolve: resolve, log: log, restart: func() {},
		scans: map[eventstore.StreamID]map[*Subscription]struct{}{}, activity: map[*Subscription]struct{}{},
		projects: map[eventstore.StreamID]string{}}
}

// Run runs the feed, restarting it with backoff when it fails, until ctx
// ends; it returns nil then. Without a feed it waits for ctx.
func (h *Hub) Run(ctx context.Context) error {
	if h.feed == nil {
		<-ctx.Done()
		return nil
	}
	wait := HubRestartMin
	for {
		start := time.Now()
		err := h.feed.Run(ctx, func(e eventstore.RecordedEvent) { h.Publish(ctx, e) })
		if ctx.Err() != nil {
			return nil
		}
		h.restart()
		h.log.Warn("live feed stopped; restarting", "err", err, "in", wait)
		if time.Since(start) > HubRestartMax {
			wait = HubRestartMin
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, HubRestartMax)
	}
}

// Filter decides whether an activity subscription sees an event of a
// project. It is called with the Hub's lock held and must not block.
type Filter struct {
	// Principal whose projects the subscription follows.
	Principal string
	// Admin subscriptions see every project.
	Admin bool
	// Projects the principal is a member of; membership events of the
	// principal update it as they pass.
	Projects map[string]bool
}

// accept updates the filter with e (a grant or revocation of the
// principal) and reports whether e, of project, passes.
func (f *Filter) accept(project string, e eventstore.RecordedEvent) bool {
	if f.Projects == nil {
		f.Projects = map[string]bool{}
	}
	if project != "" && e.StreamID.Category() == "project" && (e.Type == "MemberGranted" || e.Type == "MemberRevoked") {
		var m struct {
			Principal string `json:"principal"`
		}
		if json.Unmarshal(e.Data, &m) == nil && m.Principal == f.Principal {
			if e.Type == "MemberGranted" {
				f.Projects[project] = true
			} else {
				delete(f.Projects, project)
			}
		}
	}
	if f.Admin {
		return true
	}
	return project != "" && f.Projects[project]
}

// Subscription is one connection's view of the Hub: a bounded queue of
// events filled by the Hub and drained by Next. It is safe for concurrent
// use.
type Subscription struct {
	hub    *Hub
	stream eventstore.StreamID // "" for the activity feed
	filter *Filter
	limit  int

	mu       sync.Mutex
	queue    []eventstore.RecordedEvent
	overflow bool
	closed   bool
	ready    chan struct{}
}

// SubscribeScan subscribes to the events of one stream (a scan's) with a
// queue of at most queue events.
func (h *Hub) SubscribeScan(stream eventstore.StreamID, queue int) *Subscription {
	s := &Subscription{hub: h, stream: stream, limit: max(queue, 1), ready: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.scans[stream]
	if subs == nil {
		subs = map[*Subscription]struct{}{}
		h.scans[stream] = subs
	}
	subs[s] = struct{}{}
	return s
}

// SubscribeActivity subscribes to the activity feed as f allows, with a
// queue of at most queue events.
func (h *Hub) SubscribeActivity(f *Filter, queue int) *Subscription {
	s := &Subscription{hub: h, filter: f, limit: max(queue, 1), ready: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.activity[s] = struct{}{}
	return s
}

// Ready is signalled when events arrived or the subscription overflowed.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Next takes every queued event. overflow is true once the queue was full
// when the Hub had another event: the subscription is then dropped and
// receives nothing more. It takes the Hub's lock, so it never sees part of
// one Publish.
func (s *Subscription) Next() (events []eventstore.RecordedEvent, overflow bool) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	events, s.queue = s.queue, nil
	return events, s.overflow
}

// Close removes the subscription from the Hub. It is idempotent.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	s.hub.remove(s)
	s.hub.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// remove unlinks s; the caller holds h.mu.
func (h *Hub) remove(s *Subscription) {
	if s.stream == "" {
		delete(h.activity, s)
		return
	}
	if subs := h.scans[s.stream]; subs != nil {
		delete(subs, s)
		if len(subs) == 0 {
			delete(h.scans, s.stream)
		}
	}
}

// push queues e on s, or marks s overflowed; the caller holds h.mu. It
// reports whether s overflowed.
func (s *Subscription) push(e eventstore.RecordedEvent) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.overflow {
		return false
	}
	if len(s.queue) >= s.limit {
		s.overflow, s.queue = true, nil
	} else {
		s.queue = append(s.queue, e)
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return s.overflow
}

// Publish delivers events, in order, to every subscription that wants
// them, all under one lock: a subscription sees none of a later Publish
// before all of this one.
func (h *Hub) Publish(ctx context.Context, events ...eventstore.RecordedEvent) {
	projects := make([]string, len(events))
	h.mu.Lock()
	wantActivity := len(h.activity) > 0
	h.mu.Unlock()
	for i, e := range events {
		if inActivity(e.StreamID) {
			projects[i] = h.projectOf(ctx, e, wantActivity)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, e := range events {
		for s := range h.scans[e.StreamID] {
			if s.push(e) {
				h.remove(s)
			}
		}
		if !inActivity(e.StreamID) {
			continue
		}
		for s := range h.activity {
			if s.filter.accept(projects[i], e) && s.push(e) {
				h.remove(s)
			}
		}
	}
}

// projectOf returns the project of e's stream: from the event itself when
// it is a creation event that names it (an issue's names its repository),
// else from memory, else (when lookup is set) from the resolver. "" when
// unknown.
func (h *Hub) projectOf(ctx context.Context, e eventstore.RecordedEvent, lookup bool) string {
	p, via := h.learn(e)
	if p != "" {
		return p
	}
	if p = h.cached(via); p == "" && lookup && h.resolve != nil {
		var err error
		if p, err = h.resolve(ctx, via); err != nil {
			h.log.Debug("activity feed: project of stream unknown", "stream_id", string(via), "err", err)
			return ""
		}
		h.remember(via, p)
	}
	if p != "" && via != e.StreamID {
		h.remember(e.StreamID, p)
	}
	return p
}

func (h *Hub) cached(stream eventstore.StreamID) string {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	return h.projects[stream]
}

// learn returns the project a creation event names (and remembers it), or
// else the stream whose project is e's: e's own, or for IssueOpened its
// repository's.
func (h *Hub) learn(e eventstore.RecordedEvent) (project string, via eventstore.StreamID) {
	switch {
	case e.StreamID.Category() == "project":
		return e.StreamID.ID(), e.StreamID
	case e.Type == "RepositoryAdded" || e.Type == "ScanRequested":
		var d struct {
			ProjectID string `json:"project_id"`
		}
		if json.Unmarshal(e.Data, &d) == nil && d.ProjectID != "" {
			h.remember(e.StreamID, d.ProjectID)
			return d.ProjectID, e.StreamID
		}
	case e.Type == "IssueOpened":
		var d struct {
			RepositoryID string `json:"repository_id"`
		}
		if json.Unmarshal(e.Data, &d) == nil && d.RepositoryID != "" {
			return "", eventstore.NewStreamID("repository", d.RepositoryID)
		}
	}
	return "", e.StreamID
}

func (h *Hub) remember(stream eventstore.StreamID, project string) {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	if len(h.projects) >= MaxHubProjectCache {
		h.projects = map[eventstore.StreamID]string{}
	}
	h.projects[stream] = project
}
