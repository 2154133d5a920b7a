package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// vegaBin is the binary every test runs, built once by TestMain.
var vegaBin string

// Bounds of the process helpers.
const (
	// startTimeout bounds the wait for a process's ready line.
	startTimeout = 30 * time.Second
	// stopTimeout bounds a graceful stop (SIGTERM) before SIGKILL.
	stopTimeout = 10 * time.Second
	// logTail is how many of a process's last lines a failure shows.
	logTail = 60
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vega-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	vegaBin = filepath.Join(dir, "vega")
	start := time.Now()
	// No -race: the binary is a black box here; its packages run their own
	// tests with the race detector.
	cmd := exec.Command(goTool(), "build", "-o", vegaBin, "./cmd/vega")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/vega:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built vega in %s\n", time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	if r := os.Getenv("GOROOT"); r != "" {
		if p := filepath.Join(r, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// baseEnv is the environment every vega process starts from: nothing of
// the developer's VEGA_* or AWS_* settings leaks in.
func baseEnv(home string) map[string]string {
	return map[string]string{
		"PATH":                      os.Getenv("PATH"),
		"HOME":                      home,
		"TMPDIR":                    home,
		"VEGA_LOG_LEVEL":            "info",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}

// proc is one vega process in a process group of its own. Its standard
// error is kept (a failing test prints the tail) and can be waited on for
// a line.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid once done is closed

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced at every new line
}

// startProc starts `vega args…` with exactly env and stops it (and every
// process under it) when the test ends.
func startProc(t *testing.T, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(vegaBin, args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = env["HOME"]
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{}), changed: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		p.collect(stderr)
	}()
	go func() {
		<-read // Wait closes the pipe: read it to the end first
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("last lines of %s (pid %d):\n%s", name, cmd.Process.Pid, p.tail(logTail))
		}
	})
	return p
}

func (p *proc) collect(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// waitLine returns the rest of the first line that starts with prefix,
// failing the test if the process exits or prints none within
// startTimeout.
func (p *proc) waitLine(prefix string) string {
	p.t.Helper()
	deadline := time.After(startTimeout)
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if rest, ok := strings.CutPrefix(p.lines[seen], prefix); ok {
				p.mu.Unlock()
				return rest
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before printing %q", p.name, p.err, prefix)
		case <-deadline:
			p.t.Fatalf("%s printed no %q within %s", p.name, prefix, startTimeout)
		}
	}
}

func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("%s still running after %s", p.name, timeout)
		return nil
	}
}

// kill sends SIGKILL to the process's group and to the groups of every
// process under it (runners and the tools they run have groups of their
// own), then waits for the process to be reaped.
func (p *proc) kill() {
	p.t.Helper()
	pid := p.cmd.Process.Pid
	desc := descendants(pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for _, d := range desc {
		_ = syscall.Kill(-d, syscall.SIGKILL)
		_ = syscall.Kill(d, syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Errorf("%s (pid %d) not reaped %s after SIGKILL", p.name, pid, stopTimeout)
	}
}

// stop asks the process to stop (SIGTERM to its group), then kills
// whatever is left of it and under it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pid := p.cmd.Process.Pid
	desc := descendants(pid)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Logf("%s (pid %d) did not stop within %s of SIGTERM; killing it", p.name, pid, stopTimeout)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for _, d := range append(desc, descendants(pid)...) {
		_ = syscall.Kill(-d, syscall.SIGKILL)
		_ = syscall.Kill(d, syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Errorf("%s (pid %d) not reaped after SIGKILL", p.name, pid)
	}
}

// descendants lists the PIDs under pid (children, their children, …), read
// from /proc.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentOf(n); ok {
			children[pp] = append(children[pp], n)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		c := children[queue[0]]
		queue = queue[1:]
		out = append(out, c...)
		queue = append(queue, c...)
	}
	return out
}

// parentOf reads a process's parent PID from /proc/<pid>/stat.
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	// "pid (comm) state ppid …": comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// alive reports whether a process with this PID exists (and is not a
// zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	return len(f) > 0 && f[0] != "Z"
}

// runVega runs a short vega subcommand to its end and returns its output.
func runVega(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vegaBin, args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = env["HOME"]
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vega %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
