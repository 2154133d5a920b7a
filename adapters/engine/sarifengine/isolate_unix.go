//go:build unix

package sarifengine

import (
	"os/exec"
	"syscall"
)

// isolate runs the tool in a process group of its own and makes
// cancellation kill the whole group, so that helpers the tool started do
// not outlive the scan.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
