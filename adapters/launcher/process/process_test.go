package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/launcher/process"
	"github.com/vega-sec/vega/commands/worker"
)

// report is what the helper runner writes about itself.
type report struct {
	Args       []string `json:"args"`
	Env        []string `json:"env"`
	Cwd        string   `json:"cwd"`
	Grandchild int      `json:"grandchild"`
}

// TestHelperProcess is the fake runner: it is this test binary started by
// the launcher with "-test.run=^TestHelperProcess$ -- runner --scan …".
// It reports its arguments, environment and directory to
// $VEGA_TEST_REPORT, starts a grandchild, and sleeps unless told to exit.
func TestHelperProcess(t *testing.T) {
	i := slices.Index(os.Args, "--")
	if i < 0 || len(os.Args) < i+2 || os.Args[i+1] != "runner" {
		return // not started as a helper
	}
	cwd, _ := os.Getwd()
	sleeper := exec.Command("sleep", "60")
	_ = sleeper.Start()
	r := report{Args: os.Args[i+1:], Env: os.Environ(), Cwd: cwd, Grandchild: sleeper.Process.Pid}
	b, _ := json.Marshal(r)
	_ = os.WriteFile(os.Getenv("VEGA_TEST_REPORT")+".tmp", b, 0o600)
	_ = os.Rename(os.Getenv("VEGA_TEST_REPORT")+".tmp", os.Getenv("VEGA_TEST_REPORT"))
	if os.Getenv("VEGA_TEST_EXIT") == "1" {
		_ = sleeper.Process.Kill()
		os.Exit(0)
	}
	time.Sleep(time.Minute)
	os.Exit(3)
}

func newLauncher(t *testing.T, reportPath string, extra ...string) (*process.Launcher, string) {
	t.Helper()
	tmp := t.TempDir()
	l, err := process.New(process.Config{
		Command:  []string{os.Args[0], "-test.run=^TestHelperProcess$", "--", "runner"},
		ExtraEnv: append([]string{"VEGA_TEST_REPORT=" + reportPath}, extra...),
		TempDir:  tmp,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, tmp
}

func readReport(t *testing.T, path string) report {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			var r report
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report from the runner: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool {
	// A zombie still answers kill 0; look at its state too.
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func waitGone(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLaunchEnvironmentAndStop(t *testing.T) {
	// Not parallel: it sets environment variables of this process.
	t.Setenv("VEGA_DATA_DIR", "/data/vega")
	t.Setenv("VEGA_NATS_URL", "nats://bus:4222")
	t.Setenv("VEGA_LLM_PROVIDER_API_KEY", "sk-provider-secret")
	t.Setenv("UNRELATED_SECRET", "nope")
	reportPath := filepath.Join(t.TempDir(), "report.json")
	l, tmp := newLauncher(t, reportPath)
	id, err := l.Launch(t.Context(), worker.Job{ScanID: "01SCAN", Fence: 3})
	if err != nil {
		t.Fatal(err)
	}
	r := readReport(t, reportPath)
	if want := []string{"runner", "--scan", "01SCAN", "--fence", "3"}; !slices.Equal(r.Args, want) {
		t.Errorf("args %v, want %v", r.Args, want)
	}
	env := map[string]string{}
	for _, kv := range r.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["VEGA_DATA_DIR"] != "/data/vega" || env["VEGA_NATS_URL"] != "nats://bus:4222" || env["PATH"] == "" {
		t.Errorf("allowed variables missing: %v", r.Env)
	}
	for _, k := range []string{"VEGA_LLM_PROVIDER_API_KEY", "UNRELATED_SECRET"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s passed to the runner", k)
		}
	}
	if filepath.Dir(r.Cwd) != tmp || env["HOME"] != r.Cwd || env["TMPDIR"] != r.Cwd {
		t.Errorf("cwd %s HOME %s TMPDIR %s, want a private dir under %s", r.Cwd, env["HOME"], env["TMPDIR"], tmp)
	}
	pid, _ := strconv.Atoi(id)
	if !alive(pid) || !alive(r.Grandchild) {
		t.Fatal("runner or its child not running")
	}
	if err := l.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "runner killed", func() bool { return !alive(pid) })
	waitGone(t, "grandchild killed with the group", func() bool { return !alive(r.Grandchild) })
	waitGone(t, "private dir removed", func() bool { _, err := os.Stat(r.Cwd); return errors.Is(err, os.ErrNotExist) })
	if err := l.Stop(t.Context(), id); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestKilledRunnerIsCleanedUp(t *testing.T) {
	t.Parallel()
	reportPath := filepath.Join(t.TempDir(), "report.json")
	l, tmp := newLauncher(t, reportPath)
	id, err := l.Launch(t.Context(), worker.Job{ScanID: "01SCAN", Fence: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := readReport(t, reportPath)
	pid, _ := strconv.Atoi(id)
	// kill -9 from outside, as the OOM killer would.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "grandchild killed with the group", func() bool { return !alive(r.Grandchild) })
	waitGone(t, "private dir removed", func() bool { left, _ := os.ReadDir(tmp); return len(left) == 0 })
}

func TestShutdownWaitsThenKills(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	quick, _ := newLauncher(t, filepath.Join(dir, "quick.json"), "VEGA_TEST_EXIT=1")
	if _, err := quick.Launch(t.Context(), worker.Job{ScanID: "01A", Fence: 1}); err != nil {
		t.Fatal(err)
	}
	if err := quick.Shutdown(t.Context()); err != nil {
		t.Errorf("shutdown of a finished runner: %v", err)
	}
	slow, _ := newLauncher(t, filepath.Join(dir, "slow.json"))
	id, err := slow.Launch(t.Context(), worker.Job{ScanID: "01B", Fence: 1})
	if err != nil {
		t.Fatal(err)
	}
	readReport(t, filepath.Join(dir, "slow.json"))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := slow.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	pid, _ := strconv.Atoi(id)
	if alive(pid) {
		t.Error("runner alive after Shutdown")
	}
	if _, err := slow.Launch(t.Context(), worker.Job{ScanID: "01C", Fence: 1}); err == nil {
		t.Error("Launch after Shutdown succeeded")
	}
}

func TestProviderKeyNeverPassed(t *testing.T) {
	t.Parallel()
	for _, cfg := range []process.Config{
		{Command: []string{"x"}, Env: []string{"PATH", "VEGA_LLM_PROVIDER_API_KEY"}},
		{Command: []string{"x"}, ExtraEnv: []string{"VEGA_LLM_PROVIDER_API_KEY=sk"}},
	} {
		if _, err := process.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted the provider key", cfg)
		}
	}
}
