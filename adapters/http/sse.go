package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/queries"
)

// terminal reports whether an event ends its scan.
func terminal(eventType string) bool {
	switch eventType {
	case "ScanCompleted", "ScanFailed", "ScanCancelled", "ScanTimedOut":
		return true
	}
	return false
}

// projectOfStream resolves the project of a project, repository, scan or
// issue stream, whoever asks.
func (s *Server) projectOfStream(ctx context.Context, stream eventstore.StreamID) (string, error) {
	id := stream.ID()
	switch stream.Category() {
	case commands.CategoryProject:
		return id, nil
	case commands.CategoryRepository:
		return s.q.ProjectOfRepository(ctx, id)
	case commands.CategoryScan:
		return s.q.ProjectOfScan(ctx, id)
	case commands.CategoryIssue:
		return s.q.ProjectOfIssue(ctx, id)
	}
	return "", fmt.Errorf("project of %s: %w", stream, domain.ErrNotFound)
}

// activityCursor encodes a global position as the opaque cursor of the
// activity feed: the same text the query side gives as the JSON list's
// cursors, so either is accepted back by both.
func activityCursor(p eventstore.Position) string {
	b, _ := json.Marshal(struct {
		K string  `json:"k"`
		N []int64 `json:"n"`
	}{"activity", []int64{int64(p.Tx), p.Seq}})
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseActivityCursor reverses activityCursor.
func parseActivityCursor(field, raw string) (eventstore.Position, error) {
	bad := invalid(field, "not a cursor of the activity feed")
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return eventstore.Position{}, bad
	}
	var c struct {
		K string  `json:"k"`
		N []int64 `json:"n"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&c) != nil || c.K != "activity" || len(c.N) != 2 || c.N[0] < 0 || c.N[1] < 0 {
		return eventstore.Position{}, bad
	}
	return eventstore.Position{Tx: uint64(c.N[0]), Seq: c.N[1]}, nil
}

// resumeFrom returns the client's resume point: the Last-Event-ID header,
// else ?after=, and the field it came from ("" when neither).
func resumeFrom(r *http.Request) (raw, field string) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v, "Last-Event-ID"
	}
	if v := r.URL.Query().Get("after"); v != "" {
		return v, "after"
	}
	return "", ""
}

// sseWriter writes one event stream, each write under its own deadline.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     bytes.Buffer
}

func (s *Server) startSSE(w http.ResponseWriter) (*sseWriter, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.SSEWriteTimeout}
	return sw, sw.flush()
}

func (sw *sseWriter) flush() error {
	if err := sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := sw.w.Write(sw.buf.Bytes()); err != nil {
		return err
	}
	sw.buf.Reset()
	return sw.rc.Flush()
}

// event writes one event; data must be one line (compact JSON is).
func (sw *sseWriter) event(id, typ string, data []byte) error {
	if id != "" {
		sw.buf.WriteString("id: " + id + "\n")
	}
	if typ != "" {
		sw.buf.WriteString("event: " + typ + "\n")
	}
	sw.buf.WriteString("data: ")
	sw.buf.Write(data)
	sw.buf.WriteString("\n\n")
	return sw.flush()
}

func (sw *sseWriter) comment(text string) error {
	sw.buf.WriteString(": " + text + "\n\n")
	return sw.flush()
}

// close lifts the write deadline from the connection, which may serve
// other requests.
func (sw *sseWriter) close() { _ = sw.rc.SetWriteDeadline(time.Time{}) }

func (sw *sseWriter) send(id string, e eventstore.RecordedEvent) error {
	b, err := json.Marshal(eventOf(e))
	if err != nil {
		return err
	}
	return sw.event(id, e.Type, b)
}

// openFeed takes a connection slot for p, or fails with 429.
func (s *Server) openFeed(p *Principal) (func(), error) {
	if !s.limits.acquire(p.ID) {
		return nil, errorf(ErrRateLimited, "too many live connections")
	}
	s.m.sseConns.Inc()
	return func() {
		s.m.sseConns.Dec()
		s.limits.release(p.ID)
	}, nil
}

// streamEnded logs why a started stream ended early, at debug: a client
// that goes away is normal.
func (s *Server) streamEnded(r *http.Request, err error) error {
	if err != nil {
		s.log.DebugContext(r.Context(), "event stream ended", "request_id", RequestIDFromContext(r.Context()), "err", err)
	}
	return nil
}

// serveScanFeed streams a scan's events: it subscribes to the Hub, replays
// the stream from the store after the client's last version, then sends
// what the Hub delivers, skipping versions already sent and filling any
// gap from the store, until the scan's terminal event (then "end").
func (s *Server) serveScanFeed(w http.ResponseWriter, r *http.Request, p *Principal, id string) error {
	if p.Stream != nil && p.Stream.ScanID != id {
		return errorf(ErrUnauthenticated, "the access token is for another stream")
	}
	if _, err := s.q.Scan(r.Context(), p.caller(), id); err != nil {
		return hideNotFound(err, "scan")
	}
	var after int64
	if raw, field := resumeFrom(r); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return invalid(field, "must be a stream version (an integer >= 0)")
		}
		after = n
	}
	release, err := s.openFeed(p)
	if err != nil {
		return err
	}
	defer release()
	stream := eventstore.NewStreamID(commands.CategoryScan, id)
	sub := s.hub.SubscribeScan(stream, s.cfg.SSEQueue)
	defer sub.Close()
	sw, err := s.startSSE(w)
	if err != nil {
		return s.streamEnded(r, err)
	}
	defer sw.close()
	ctx := r.Context()
	last := after
	// sendUpTo replays the store from last+1 to to (0: to the end); it
	// reports whether the scan ended.
	sendUpTo := func(to int64) (bool, error) {
		for {
			page, err := s.events.ReadStream(ctx, stream, last+1, SSEReplayPage)
			if err != nil {
				return false, err
			}
			for _, e := range page {
				if to > 0 && e.Version > to {
					return false, nil
				}
				if err := sw.send(strconv.FormatInt(e.Version, 10), e); err != nil {
					return false, err
				}
				last = e.Version
				if terminal(e.Type) {
					return true, sw.event("", "end", []byte("{}"))
				}
			}
			if len(page) < SSEReplayPage {
				return false, nil
			}
		}
	}
	if after > 0 {
		// A client that already saw the terminal event gets "end" at once.
		seen, err := s.events.ReadStream(ctx, stream, after, 1)
		if err != nil {
			return s.streamEnded(r, err)
		}
		if len(seen) == 1 && seen[0].Version == after && terminal(seen[0].Type) {
			return s.streamEnded(r, sw.event("", "end", []byte("{}")))
		}
	}
	if ended, err := sendUpTo(0); ended || err != nil {
		return s.streamEnded(r, err)
	}
	return s.serveLive(r, sw, sub, func(events []eventstore.RecordedEvent, overflow bool) (bool, error) {
		for _, e := range events {
			if e.Version <= last {
				continue
			}
			if e.Version > last+1 {
				// The live feed skipped versions: take them from the store.
				if ended, err := sendUpTo(e.Version - 1); ended || err != nil {
					return true, err
				}
			}
			if err := sw.send(strconv.FormatInt(e.Version, 10), e); err != nil {
				return true, err
			}
			last = e.Version
			if terminal(e.Type) {
				return true, sw.event("", "end", []byte("{}"))
			}
		}
		if overflow {
			s.m.sseOver.Inc()
			return true, sw.event("", "overflow", []byte(`{"last_id":`+strconv.FormatInt(last, 10)+`}`))
		}
		return false, nil
	})
}

// serveLive is the live phase of a feed whose replay is done: until the
// client goes away or the server stops, it sends a heartbeat comment every
// SSEHeartbeat and hands each batch sub delivers to deliver, which reports
// whether the stream is over (and with which write or read error). Its
// result is the handler's: a started stream always ends with nil, its
// early end logged by streamEnded.
func (s *Server) serveLive(r *http.Request, sw *sseWriter, sub *Subscription, deliver func(events []eventstore.RecordedEvent, overflow bool) (ended bool, err error)) error {
	ctx := r.Context()
	beat := time.NewTicker(s.cfg.SSEHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return nil
		case <-beat.C:
			if err := sw.comment("heartbeat"); err != nil {
				return s.streamEnded(r, err)
			}
		case <-sub.Ready():
			if ended, err := deliver(sub.Next()); ended || err != nil {
				return s.streamEnded(r, err)
			}
		}
	}
}

// activityFilter returns the filter of p's activity feed: the projects it
// is a member of now (admins: all).
func (s *Server) activityFilter(ctx context.Context, p *Principal) (*Filter, error) {
	f := &Filter{Principal: p.ID, Admin: p.Admin, Projects: map[string]bool{}}
	if p.Admin {
		return f, nil
	}
	o := queries.ListOptions{Limit: MaxListLimit}
	for {
		page, err := s.q.ListProjects(ctx, p.caller(), o)
		if err != nil {
			return nil, err
		}
		for _, pr := range page.Items {
			f.Projects[pr.ID] = true
		}
		if page.NextCursor == "" {
			return f, nil
		}
		o.Cursor = page.NextCursor
	}
}

func (f *Filter) clone() *Filter {
	c := &Filter{Principal: f.Principal, Admin: f.Admin, Projects: make(map[string]bool, len(f.Projects))}
	for k, v := range f.Projects {
		c.Projects[k] = v
	}
	return c
}

// serveActivityFeed streams the events of the caller's projects. With a
// resume cursor it first replays the store after it; without, it starts
// at the store's head (live only). Ids are opaque global cursors.
func (s *Server) serveActivityFeed(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if p.Stream != nil && p.Stream.ScanID != "" {
		return errorf(ErrUnauthenticated, "the access token is for a scan's stream")
	}
	var (
		from    eventstore.Position
		resumed bool
	)
	if raw, field := resumeFrom(r); raw != "" {
		pos, err := parseActivityCursor(field, raw)
		if err != nil {
			return err
		}
		from, resumed = pos, true
	}
	ctx := r.Context()
	filter, err := s.activityFilter(ctx, p)
	if err != nil {
		return err
	}
	release, err := s.openFeed(p)
	if err != nil {
		return err
	}
	defer release()
	sub := s.hub.SubscribeActivity(filter.clone(), s.cfg.SSEQueue)
	defer sub.Close()
	last := from
	if !resumed {
		if last, err = s.events.Head(ctx); err != nil {
			return err
		}
	}
	sw, err := s.startSSE(w)
	if err != nil {
		return s.streamEnded(r, err)
	}
	defer sw.close()
	if resumed {
		q := eventstore.Query{After: from, Categories: activityCategories, Limit: SSEReplayPage}
		for {
			page, next, err := s.events.ReadAll(ctx, q)
			if err != nil {
				return s.streamEnded(r, err)
			}
			for _, e := range page {
				if filter.accept(s.hub.projectOf(ctx, e, true), e) {
					if err := sw.send(activityCursor(e.Position), e); err != nil {
						return s.streamEnded(r, err)
					}
				}
			}
			if next.Less(last) {
				next = last
			}
			last, q.After = next, next
			if len(page) < SSEReplayPage {
				break
			}
		}
	}
	return s.serveLive(r, sw, sub, func(events []eventstore.RecordedEvent, overflow bool) (bool, error) {
		for _, e := range events {
			if !last.Less(e.Position) {
				continue
			}
			if err := sw.send(activityCursor(e.Position), e); err != nil {
				return true, err
			}
			last = e.Position
		}
		if overflow {
			s.m.sseOver.Inc()
			b, _ := json.Marshal(map[string]string{"last_id": activityCursor(last)})
			return true, sw.event("", "overflow", b)
		}
		return false, nil
	})
}
