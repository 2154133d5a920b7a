package postgres_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/internal/pgtest"
)

// batch is one Append call: its stream and its event IDs.
type batch struct {
	stream eventstore.StreamID
	ids    []string
}

func newBatch(stream eventstore.StreamID, n int) (batch, []eventstore.NewEvent) {
	b := batch{stream: stream}
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = ev("Loaded", fmt.Sprintf(`{"i":%d}`, i))
		b.ids = append(b.ids, evs[i].ID)
	}
	return b, evs
}

// presentCounts returns how many of each batch's events the database holds.
func presentCounts(t *testing.T, ctx context.Context, url string, batches []batch) []int {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := make([]int, len(batches))
	for i, b := range batches {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_id = ANY($1)`, b.ids).Scan(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestTerminatedConnections kills the pool's backends while appends run:
// each call fails cleanly or succeeds, no batch is half-written, and the
// store goes on working.
func TestTerminatedConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := pgtest.Schema(t)
	app := "vega_fault_" + ulid.Make().String()
	url := base + "&application_name=" + app
	pool, err := postgres.NewPool(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	killer, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)

	const writers, perWriter = 4, 60
	var (
		mu       sync.Mutex
		acked    []batch
		failed   []batch
		killed   atomic.Int64
		stop     = make(chan struct{})
		killDone = make(chan struct{})
	)
	go func() {
		defer close(killDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			var n int64
			if err := killer.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err == nil {
				killed.Add(n)
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				b, evs := newBatch(eventstore.StreamID(fmt.Sprintf("fault-w%d_%d", w, i%5)), 3)
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := s.Append(actx, b.stream, eventstore.Any, evs...)
				cancel()
				mu.Lock()
				if err == nil {
					acked = append(acked, b)
				} else {
					failed = append(failed, b)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-killDone
	if killed.Load() == 0 {
		t.Fatal("no backend was terminated: the fault never happened")
	}
	t.Logf("terminated %d backends; %d appends acknowledged, %d failed", killed.Load(), len(acked), len(failed))
	if len(failed) == 0 {
		t.Log("every append survived (the pool retried on fresh connections)")
	}
	for i, n := range presentCounts(t, ctx, url, acked) {
		if n != 3 {
			t.Errorf("acknowledged batch %d has %d of 3 events", i, n)
		}
	}
	for i, n := range presentCounts(t, ctx, url, failed) {
		if n != 0 && n != 3 {
			t.Errorf("failed batch %d is half-written: %d of 3 events", i, n)
		}
	}
	// The next append works, and every stream's chain holds.
	if _, err := s.Append(ctx, "fault-after", eventstore.NoStream, ev("After", `{}`)); err != nil {
		t.Fatalf("append after the faults: %v", err)
	}
	for w := range writers {
		for i := range 5 {
			stream := eventstore.StreamID(fmt.Sprintf("fault-w%d_%d", w, i))
			evs, err := s.ReadStream(ctx, stream, 1, 10000)
			if err != nil {
				t.Fatal(err)
			}
			if b := eventstore.VerifyChain(evs); b != 0 {
				t.Errorf("%s: chain broken at %d", stream, b)
			}
		}
	}
}

// pgBin finds initdb and pg_ctl.
func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		return "", fmt.Errorf("%s not found on PATH or under /usr/lib/postgresql/*/bin", name)
	}
	return matches[len(matches)-1], nil
}

// throwaway is a PostgreSQL server that one test owns.
type throwaway struct {
	t       *testing.T
	dir     string
	port    int
	pgctl   string
	runAs   *user.User
	logFile string
}

func (p *throwaway) cmd(bin string, args ...string) *exec.Cmd {
	if p.runAs != nil {
		return exec.Command("runuser", append([]string{"-u", p.runAs.Username, "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func (p *throwaway) run(bin string, args ...string) {
	p.t.Helper()
	if out, err := p.cmd(bin, args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(p.logFile)
		p.t.Fatalf("%s %v: %v\n%s\nserver log:\n%s", filepath.Base(bin), args, err, out, log)
	}
}

func (p *throwaway) start() {
	p.t.Helper()
	p.run(p.pgctl, "-D", filepath.Join(p.dir, "data"), "-l", p.logFile, "-w", "-t", "60", "-o",
		fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=on -c synchronous_commit=on", p.port, p.dir), "start")
}

func (p *throwaway) crash() {
	p.t.Helper()
	p.run(p.pgctl, "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop")
}

func (p *throwaway) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

func newThrowaway(t *testing.T) *throwaway {
	t.Helper()
	initdb, err := pgBin("initdb")
	if err != nil {
		pgtest.Unavailable(t, "postgres binaries (initdb)", err)
	}
	pgctl, err := pgBin("pg_ctl")
	if err != nil {
		pgtest.Unavailable(t, "postgres binaries (pg_ctl)", err)
	}
	dir, err := os.MkdirTemp("", "vega-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &throwaway{t: t, dir: dir, pgctl: pgctl, logFile: filepath.Join(dir, "server.log")}
	if os.Geteuid() == 0 {
		// initdb and pg_ctl refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user for initdb: %v", err)
		}
		p.runAs = u
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = p.cmd(p.pgctl, "-D", filepath.Join(dir, "data"), "-m", "immediate", "stop").Run()
		_ = os.RemoveAll(dir)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.run(initdb, "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	p.start()
	return p
}

// TestCrashKeepsAcknowledgedAppends owns a server, crashes it (immediate
// shutdown) in the middle of a load, restarts it, and checks that every
// acknowledged append is there, whole, with its chain intact.
func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	t.Parallel()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("short mode: skipping the throwaway postgres server test (initdb takes seconds)")
	}
	srv := newThrowaway(t)
	ctx := context.Background()
	pool, err := postgres.NewPool(ctx, srv.url(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	s, err := postgres.Open(ctx, srv.url(), postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked []batch
		wg    sync.WaitGroup
		total atomic.Int64
	)
	crashed := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				b, evs := newBatch(eventstore.StreamID(fmt.Sprintf("crash-w%d", w)), 2)
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := s.Append(actx, b.stream, eventstore.Any, evs...)
				cancel()
				if err != nil {
					select {
					case <-crashed:
						return
					default:
						t.Errorf("append before the crash: %v", err)
						return
					}
				}
				mu.Lock()
				acked = append(acked, b)
				mu.Unlock()
				total.Add(1)
			}
		}()
	}
	for total.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	close(crashed)
	srv.crash()
	wg.Wait()
	s.Close()
	srv.start()

	if len(acked) < 300 {
		t.Fatalf("only %d appends acknowledged", len(acked))
	}
	for i, n := range presentCounts(t, ctx, srv.url(), acked) {
		if n != 2 {
			t.Errorf("acknowledged batch %d has %d of 2 events after the crash", i, n)
		}
	}
	s2, err := postgres.Open(ctx, srv.url(), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for w := range 4 {
		stream := eventstore.StreamID(fmt.Sprintf("crash-w%d", w))
		evs, err := s2.ReadStream(ctx, stream, 1, 100000)
		if err != nil {
			t.Fatal(err)
		}
		if b := eventstore.VerifyChain(evs); b != 0 {
			t.Errorf("%s: chain broken at %d after the crash", stream, b)
		}
	}
	if _, err := s2.Append(ctx, "crash-after", eventstore.NoStream, ev("After", `{}`)); err != nil {
		t.Fatalf("append after restart: %v", err)
	}
	t.Logf("%d appends acknowledged before the crash, all present after restart", len(acked))
}
