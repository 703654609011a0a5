package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot is the directory of the go.mod of the module the current
// directory is in; the benches run from inside the phasegate module.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benches inside the phasegate module")
	}
	return filepath.Dir(gomod), nil
}

// Build builds ./cmd/phasegate of the module at root into dir/phasegate
// and returns the binary's path. overlay, when not empty, is go build
// -overlay's Replace map (absolute paths of files of the build to the
// files that replace them, "" to delete one): a candidate change measured
// without touching the tree.
func Build(ctx context.Context, root, dir string, overlay map[string]string) (string, error) {
	bin := filepath.Join(dir, "phasegate")
	args := []string{"build", "-o", bin}
	if len(overlay) > 0 {
		ov, err := json.Marshal(map[string]map[string]string{"Replace": overlay})
		if err != nil {
			return "", err
		}
		file := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(file, ov, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", file)
	}
	args = append(args, "./cmd/phasegate")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/phasegate: %w\n%s", err, out)
	}
	return bin, nil
}

// Validate runs `phasegate validate -c file`; its error holds phasegate's
// problems, one a line.
func Validate(ctx context.Context, bin, file string) error {
	out, err := exec.CommandContext(ctx, bin, "validate", "-c", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("phasegate validate -c %s: %v\n%s", file, err, bytes.TrimSpace(out))
	}
	return nil
}
