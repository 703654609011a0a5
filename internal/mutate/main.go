// Command mutate is `make mutate`: mutation testing of the lifecycle's
// code, in two parts (docs/testing.md).
//
// First it runs gremlins (github.com/go-gremlins/gremlins, its version
// pinned by the caller) over each target directory: operator mutants
// (a < becomes <=, a == becomes !=, ...) in the code the tests cover, each
// tested against its own package's tests. Then it applies the semantic
// mutants listed in a JSON file: bugs of our own kind (a release skipped, a
// recover dropped, a scope closed late), each a token-level replacement in
// a named function, tested with go test -overlay so the tree is never
// written. A semantic mutant whose function or text is gone is stale, and
// fails the run before anything else runs.
//
// It prints, as its last line, "mutation score: K/N killed (P%)" over the
// covered mutants of both kinds, and exits non-zero when the score is
// below -min, or when a semantic mutant lives, hangs, does not build or is
// stale.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		dir       = flag.String("dir", ".", "the root of the module under test")
		gremlins  = flag.String("gremlins", "", "gremlins to `go run`, as module/cmd/gremlins@version (required)")
		targets   = flag.String("targets", "fsm,phases,llm/provider/attempt.go", "comma-separated directories (with their subdirectories) or single files for gremlins, relative to -dir")
		exclude   = flag.String("exclude", "", "comma-separated files or directories (ending in /) that gremlins leaves alone, relative to -dir")
		coeff     = flag.Int("timeout-coefficient", 10, "gremlins stops a mutant's tests after this many times the unmutated run's duration")
		mutants   = flag.String("mutants", "internal/mutate/mutants.json", "the semantic mutants, relative to -dir; empty for none")
		checks    = flag.Int("rapid-checks", 100, "paths per property test in gremlins' runs (RAPID_CHECKS)")
		semChecks = flag.Int("semantic-checks", 1000, "paths per property test in a semantic mutant's run, where one property meets one planted bug")
		workers   = flag.Int("j", runtime.NumCPU(), "mutants tested at once")
		timeout   = flag.Duration("timeout", 3*time.Minute, "a semantic mutant's test run is stopped (and counted as hung) after this")
		minScore  = flag.Float64("min", 90, "the lowest score, in percent, that passes")
		show      = flag.Bool("show", false, "print how the tests failed on each semantic mutant")
	)
	flag.Parse()
	root, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}
	start := time.Now()
	env := append(os.Environ(),
		"GOFLAGS=-count=1", // no cached test results: every run is a run
		"RAPID_NOFAILFILE=true",
	)
	ctx := context.Background()
	var score tally
	ok := true

	var sem []semantic
	if *mutants != "" {
		sem, err = loadMutants(root, filepath.Join(root, *mutants))
		if err != nil {
			fail(err) // stale mutants fail before the long part
		}
	}
	if *gremlins == "" {
		fail(fmt.Errorf("-gremlins is required"))
	}
	for _, t := range split(*targets) {
		dir, excluded, err := targetFiles(root, t, split(*exclude))
		if err != nil {
			fail(err)
		}
		// Only killed or not matters here: a failure is shrunk for 5s at most.
		genv := append(withChecks(env, *checks), "RAPID_SHRINKTIME=5s")
		r, err := runGremlins(ctx, root, *gremlins, dir, excludesUnder(dir, excluded), *workers, *coeff, genv)
		if err != nil {
			fail(err)
		}
		r.print(os.Stdout)
		score.add(r.tally)
	}
	if len(sem) > 0 {
		fmt.Printf("== semantic mutants (%s)\n", *mutants)
		r := runSemantic(ctx, root, sem, *workers, *timeout, withChecks(env, *semChecks))
		r.print(os.Stdout, *show)
		score.add(r.tally)
		ok = r.ok()
	}
	fmt.Printf("== wall time %s; CPU time of the test runs %s\n", time.Since(start).Round(time.Second), childCPU().Round(time.Second))
	pct := score.percent()
	if pct < *minScore {
		fmt.Printf("the score is below %.0f%%\n", *minScore)
		ok = false
	}
	fmt.Printf("mutation score: %d/%d killed (%.1f%%)\n", score.killed, score.covered, pct)
	if !ok {
		os.Exit(1)
	}
}

func withChecks(env []string, checks int) []string {
	return append(env[:len(env):len(env)], fmt.Sprintf("RAPID_CHECKS=%d", checks))
}

// tally counts mutants that the tests cover.
type tally struct{ killed, covered int }

func (t *tally) add(o tally) { t.killed += o.killed; t.covered += o.covered }

func (t tally) percent() float64 {
	if t.covered == 0 {
		return 0
	}
	return 100 * float64(t.killed) / float64(t.covered)
}

// split splits a comma-separated list of paths, keeping a trailing "/"
// (a directory).
func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p := filepath.ToSlash(filepath.Clean(f))
		if strings.HasSuffix(f, "/") {
			p += "/"
		}
		out = append(out, p)
	}
	return out
}

// targetFiles returns the directory gremlins runs in for target, and the
// paths it leaves alone: the excluded ones, and, when target is a single
// file, every other Go file under its directory.
func targetFiles(root, target string, excluded []string) (string, []string, error) {
	if !strings.HasSuffix(target, ".go") {
		return target, excluded, nil
	}
	dir := filepath.ToSlash(filepath.Dir(target))
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if rel = filepath.ToSlash(rel); err == nil && rel != target {
			excluded = append(excluded, rel)
		}
		return err
	})
	return dir, excluded, err
}

// excludesUnder turns the excluded paths inside target into gremlins'
// exclusion patterns, which match paths relative to the target.
func excludesUnder(target string, excluded []string) []string {
	var out []string
	for _, e := range excluded {
		if rel, ok := strings.CutPrefix(e, target+"/"); ok {
			pattern := "^" + regexpQuote(rel)
			if !strings.HasSuffix(rel, "/") {
				pattern += "$"
			}
			out = append(out, pattern)
		}
	}
	return out
}

// childCPU is the user and system time of every process this one waited
// for: gremlins, go test and the test binaries they ran.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mutate:", err)
	os.Exit(2)
}
