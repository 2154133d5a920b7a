//go:build !unix

package sarifengine

import "os/exec"

// isolate is a no-op where process groups are not available: cancellation
// kills the tool's process only.
func isolate(*exec.Cmd) {}
