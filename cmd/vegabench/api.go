package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vega-sec/vega/internal/bench"
)

// API figures run against a real `vega dev` process (the binary `make bench`
// builds): command-to-SSE-client latency, and fan-out of one scan feed to
// 2,000 subscribers with the server's memory per connection.
const (
	sseSamples      = 200
	fanoutClients   = 2000
	fanoutDeadline  = 60 * time.Second
	startupDeadline = 60 * time.Second
)

type devProcess struct {
	cmd   *exec.Cmd
	base  string
	token string
	dir   string
}

func startDev(ctx context.Context, bin string) (*devProcess, error) {
	dir, err := os.MkdirTemp("", "vegabench-dev-")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token := "vega_bench_" + hex.EncodeToString(b)
	cmd := exec.Command(bin, "dev")
	cmd.Env = append(os.Environ(),
		"VEGA_DATA_DIR="+dir, "VEGA_HTTP_ADDR=127.0.0.1:0", "VEGA_LOG_LEVEL=error", "VEGA_BOOTSTRAP_TOKEN="+token,
		"VEGA_SSE_MAX_CONNS="+strconv.Itoa(fanoutClients+100), "VEGA_SSE_MAX_PER_PRINCIPAL="+strconv.Itoa(fanoutClients+100))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &devProcess{cmd: cmd, token: token, dir: dir}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "vega: listening on "); ok {
				found <- u
			}
		}
	}()
	select {
	case p.base = <-found:
		return p, nil
	case <-time.After(startupDeadline):
	case <-ctx.Done():
	}
	p.stop()
	return nil, errors.New("vega dev printed no listening line")
}

func (p *devProcess) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	os.RemoveAll(p.dir)
}

// rssKiB reads the process's resident set from /proc.
func (p *devProcess) rssKiB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

func (p *devProcess) call(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// upload captures a one-file snapshot for the repository.
func (p *devProcess) upload(ctx context.Context, repoID string) error {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte("print('hello')\n")
	if err := tw.WriteHeader(&tar.Header{Name: "app/main.py", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(body); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/api/v1/repositories/"+repoID+"/snapshots", &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("upload a snapshot: %d %s", resp.StatusCode, b)
	}
	return nil
}

// sseEvent is one event of a feed: its type, data, and when it arrived.
type sseEvent struct {
	typ  string
	data []byte
	at   time.Time
}

// subscribe opens an SSE feed and sends its events on ch until ctx ends.
// ready is closed once the response headers arrived.
func (p *devProcess) subscribe(ctx context.Context, client *http.Client, path string, ready chan<- error, ch chan<- sseEvent) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		ready <- err
		return
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		ready <- err
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ready <- fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		return
	}
	ready <- nil
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = []byte(strings.TrimPrefix(line, "data: "))
		case line == "" && ev.typ != "":
			ev.at = time.Now()
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
			ev = sseEvent{}
		}
	}
}

func apiFigures(ctx context.Context, bin string, progress func(bench.Line)) ([]bench.Line, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("the vega binary %s: %w (make bench builds it)", bin, err)
	}
	p, err := startDev(ctx, bin)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	var lines []bench.Line
	add := func(l bench.Line) {
		l.Store = "sqlite"
		lines = append(lines, l)
		progress(l)
	}

	// Command to SSE client: create projects one at a time while a client
	// follows the activity feed; each latency runs from just before the POST
	// to the arrival of its ProjectCreated.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan error, 1)
	events := make(chan sseEvent, 1024)
	go p.subscribe(ctx, http.DefaultClient, "/api/v1/events", ready, events)
	if err := <-ready; err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := range sseSamples {
		name := fmt.Sprintf("bench-%d", i)
		sent := time.Now()
		if err := p.call(ctx, http.MethodPost, "/api/v1/projects", map[string]string{"name": name}, nil); err != nil {
			return nil, err
		}
		for got := false; !got; {
			select {
			case ev := <-events:
				var item struct {
					Data struct {
						Name string `json:"name"`
					} `json:"data"`
				}
				if ev.typ == "ProjectCreated" && json.Unmarshal(ev.data, &item) == nil && item.Data.Name == name {
					lat = append(lat, ev.at.Sub(sent))
					got = true
				}
			case <-time.After(10 * time.Second):
				return nil, fmt.Errorf("project %s never reached the activity feed", name)
			}
		}
	}
	add(bench.Line{Figure: "sse_p50", Value: bench.Percentile(lat, 50), Unit: "ms"})
	add(bench.Line{Figure: "sse_p99", Value: bench.Percentile(lat, 99), Unit: "ms", Target: "<=50",
		Note: fmt.Sprintf("%d commands (POST /projects, which answers after the read models caught up) to their event on an SSE client of the activity feed, vega dev on SQLite and the embedded NATS server", sseSamples)})

	fan, err := fanout(ctx, p)
	if err != nil {
		return lines, err
	}
	for _, l := range fan {
		add(l)
	}
	return lines, nil
}

// fanout subscribes fanoutClients to one scan's feed, measures the server's
// memory per connection, then times the delivery of one event to all.
func fanout(ctx context.Context, p *devProcess) ([]bench.Line, error) {
	var proj, repo, scan struct {
		ID string `json:"id"`
	}
	if err := p.call(ctx, http.MethodPost, "/api/v1/projects", map[string]string{"name": "fanout"}, &proj); err != nil {
		return nil, err
	}
	if err := p.call(ctx, http.MethodPost, "/api/v1/projects/"+proj.ID+"/repositories",
		map[string]any{"name": "fanout", "source": map[string]string{"kind": "archive"}}, &repo); err != nil {
		return nil, err
	}
	if err := p.upload(ctx, repo.ID); err != nil {
		return nil, err
	}
	// A scan that waits for a SARIF upload stays requested: its feed is
	// quiet until the cancel below.
	if err := p.call(ctx, http.MethodPost, "/api/v1/repositories/"+repo.ID+"/scans",
		map[string]any{"engines": []string{"sarif-upload"}}, &scan); err != nil {
		return nil, fmt.Errorf("request a scan to fan out: %w", err)
	}
	time.Sleep(500 * time.Millisecond) // let the process settle before the baseline (not an assertion)
	before, err := p.rssKiB()
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: fanoutClients, DisableCompression: true}}
	ctx, cancel := context.WithTimeout(ctx, fanoutDeadline)
	defer cancel()
	var wg sync.WaitGroup
	arrivals := make(chan time.Time, fanoutClients)
	connected := make(chan error, fanoutClients)
	for range fanoutClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready := make(chan error, 1)
			ch := make(chan sseEvent, 16)
			go p.subscribe(ctx, client, "/api/v1/scans/"+scan.ID+"/events", ready, ch)
			err := <-ready
			connected <- err
			if err != nil {
				return
			}
			for {
				select {
				case ev := <-ch:
					if ev.typ == "ScanCancelled" {
						arrivals <- ev.at
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	for range fanoutClients {
		if err := <-connected; err != nil {
			return nil, fmt.Errorf("subscriber: %w", err)
		}
	}
	time.Sleep(time.Second) // replays done, queues idle (not an assertion)
	after, err := p.rssKiB()
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	if err := p.call(ctx, http.MethodPost, "/api/v1/scans/"+scan.ID+"/cancel", nil, nil); err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, fanoutClients)
	for len(lat) < fanoutClients {
		select {
		case at := <-arrivals:
			lat = append(lat, at.Sub(sent))
		case <-ctx.Done():
			return nil, fmt.Errorf("fan-out: %d of %d subscribers got the event", len(lat), fanoutClients)
		}
	}
	cancel()
	wg.Wait()
	perConn := (after - before) / fanoutClients
	return []bench.Line{
		{Figure: "fanout_2000_p99", Value: bench.Percentile(lat, 99), Unit: "ms",
			Note: "one event (a cancel) to 2,000 SSE subscribers of one scan feed, from the POST to each arrival"},
		{Figure: "fanout_2000_kib_per_conn", Value: perConn, Unit: "KiB", Target: "<=64",
			Note: fmt.Sprintf("server resident memory (VmRSS) grew from %.0f to %.0f KiB with 2,000 subscribers", before, after)},
	}, nil
}
