package runner

import (
	"context"
	"fmt"
	"os/exec"
)

// Convert turns an uploaded document into PDF.
func Convert(ctx context.Context, src, dst string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("libreoffice --convert-to pdf %s --outdir %s", src, dst))
	return cmd.Run()
}

// ConvertSafe runs the converter without a shell.
func ConvertSafe(ctx context.Context, src, dst string) error {
	return exec.CommandContext(ctx, "libreoffice", "--convert-to", "pdf", src, "--outdir", dst).Run()
}

// Hook runs the repository's configured post-scan hook.
func Hook(hook string) ([]byte, error) {
	return exec.Command("/bin/sh", "-c", hook).CombinedOutput()
}

// Version reports the converter version.
func Version() ([]byte, error) {
	return exec.Command("sh", "-c", "libreoffice --version | head -1").Output()
}

// Archive tars a workspace.
func Archive(dir string) error {
	return exec.Command("bash", "-c", "tar czf /tmp/ws.tgz "+dir).Run()
}
