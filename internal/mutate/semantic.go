package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// semantic is a mutant of our own: in File, each edit's Find (Go tokens,
// however they are laid out) occurs exactly once in the function named
// Func ("Close", "(*Scope).Close") and becomes Replace. Test names the
// packages whose tests must kill it; Run optionally narrows them (go test
// -run) to the property that is meant to.
type semantic struct {
	Name  string `json:"name"`
	Why   string `json:"why"`
	File  string `json:"file"`
	Edits []struct {
		Func    string `json:"func"`
		Find    string `json:"find"`
		Replace string `json:"replace"`
	} `json:"edits"`
	Test string `json:"test"`
	Run  string `json:"run"`

	mutated []byte
}

// loadMutants reads the mutants and applies each in memory. A mutant that
// does not apply (its file, function or text has moved) is an error
// naming every such mutant.
func loadMutants(root, path string) ([]semantic, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ms []semantic
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ms); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var stale []error
	names := map[string]bool{}
	for i := range ms {
		m := &ms[i]
		if names[m.Name] {
			stale = append(stale, fmt.Errorf("mutant %q appears twice", m.Name))
		}
		names[m.Name] = true
		if err := m.apply(root); err != nil {
			stale = append(stale, fmt.Errorf("stale mutant %q: %w", m.Name, err))
		}
	}
	if len(stale) > 0 {
		return nil, errors.Join(stale...)
	}
	return ms, nil
}

// apply computes the mutated file.
func (m *semantic) apply(root string) error {
	if m.Name == "" || m.File == "" || m.Test == "" || len(m.Edits) == 0 {
		return fmt.Errorf("name, file, test and edits are all required")
	}
	src, err := os.ReadFile(filepath.Join(root, m.File))
	if err != nil {
		return err
	}
	for _, e := range m.Edits {
		start, end, err := findInFunc(src, e.Func, e.Find)
		if err != nil {
			return fmt.Errorf("%s %s: %w", m.File, e.Func, err)
		}
		src = append(append(append([]byte(nil), src[:start]...), e.Replace...), src[end:]...)
	}
	if _, err := parser.ParseFile(token.NewFileSet(), m.File, src, 0); err != nil {
		return fmt.Errorf("the mutated %s does not parse: %w", m.File, err)
	}
	m.mutated = src
	return nil
}

// tok is one token with its byte span.
type tok struct {
	t          token.Token
	lit        string
	start, end int
}

// tokens scans src, leaving out the semicolons the scanner inserts at
// line ends, so that layout does not matter.
func tokens(src []byte) ([]tok, error) {
	fset := token.NewFileSet()
	f := fset.AddFile("", -1, len(src))
	var errs scanner.ErrorList
	var s scanner.Scanner
	s.Init(f, src, func(pos token.Position, msg string) { errs.Add(pos, msg) }, 0)
	var out []tok
	for {
		pos, t, lit := s.Scan()
		if t == token.EOF {
			break
		}
		if t == token.SEMICOLON && lit == "\n" {
			continue
		}
		start := f.Offset(pos)
		text := lit
		if text == "" {
			text = t.String()
		}
		out = append(out, tok{t: t, lit: lit, start: start, end: start + len(text)})
	}
	return out, errs.Err()
}

// findInFunc returns the byte span, in src, of the one occurrence of the
// tokens of find inside the function named fn.
func findInFunc(src []byte, fn, find string) (int, int, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, 0)
	if err != nil {
		return 0, 0, err
	}
	var decl *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && funcName(fd) == fn {
			decl = fd
		}
	}
	if decl == nil {
		return 0, 0, fmt.Errorf("no function %s", fn)
	}
	from, to := fset.Position(decl.Pos()).Offset, fset.Position(decl.End()).Offset
	body, err := tokens(src[from:to])
	if err != nil {
		return 0, 0, err
	}
	want, err := tokens([]byte(find))
	if err != nil || len(want) == 0 {
		return 0, 0, fmt.Errorf("find %q is not Go tokens", find)
	}
	var spans [][2]int
	for i := 0; i+len(want) <= len(body); i++ {
		match := true
		for j := range want {
			if body[i+j].t != want[j].t || body[i+j].lit != want[j].lit {
				match = false
				break
			}
		}
		if match {
			spans = append(spans, [2]int{from + body[i].start, from + body[i+len(want)-1].end})
		}
	}
	if len(spans) != 1 {
		return 0, 0, fmt.Errorf("%q occurs %d times, want once", find, len(spans))
	}
	return spans[0][0], spans[0][1], nil
}

// outcome is how a semantic mutant fared.
type outcome struct {
	m       *semantic
	status  string // killed, lived, hung, not viable
	by      string // the first failing test
	elapsed time.Duration
	output  string
}

type semanticResult struct {
	outcomes []outcome
	broken   []string // baselines that fail unmutated
	tally
}

func (r *semanticResult) ok() bool {
	if len(r.broken) > 0 {
		return false
	}
	for _, o := range r.outcomes {
		if o.status != "killed" {
			return false
		}
	}
	return true
}

var failRE = regexp.MustCompile(`--- FAIL: (\S+)`)

// runSemantic checks that each selection of tests passes unmutated, then
// runs it against its mutant, workers at a time.
func runSemantic(ctx context.Context, root string, ms []semantic, workers int, timeout time.Duration, env []string) *semanticResult {
	r := &semanticResult{outcomes: make([]outcome, len(ms))}
	tmp, err := os.MkdirTemp("", "mutate-*")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(tmp)

	baselines := map[string]bool{}
	for _, m := range ms {
		key := m.Test + " -run " + m.Run
		if _, done := baselines[key]; done {
			continue
		}
		o := goTest(ctx, root, "", m.Test, m.Run, timeout, env)
		baselines[key] = o.status == "lived"
		if o.status != "lived" {
			r.broken = append(r.broken, fmt.Sprintf("go test %s fails without any mutant (%s):\n%s", key, o.status, o.output))
		}
	}
	if len(r.broken) > 0 {
		return r
	}

	jobs := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				m := &ms[i]
				overlay, err := writeOverlay(tmp, fmt.Sprint(i), filepath.Join(root, m.File), m.mutated)
				if err != nil {
					r.outcomes[i] = outcome{m: m, status: "not viable", output: err.Error()}
					continue
				}
				o := goTest(ctx, root, overlay, m.Test, m.Run, timeout, env)
				o.m = m
				r.outcomes[i] = o
			}
		}()
	}
	for i := range ms {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, o := range r.outcomes {
		r.covered++
		if o.status == "killed" {
			r.killed++
		}
	}
	return r
}

// writeOverlay writes the mutated file and a go build -overlay file that
// puts it in place of file.
func writeOverlay(tmp, id, file string, data []byte) (string, error) {
	dir := filepath.Join(tmp, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	mutated := filepath.Join(dir, filepath.Base(file))
	if err := os.WriteFile(mutated, data, 0o644); err != nil {
		return "", err
	}
	ov, err := json.Marshal(map[string]map[string]string{"Replace": {file: mutated}})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "overlay.json")
	return path, os.WriteFile(path, ov, 0o644)
}

// goTest runs the tests; "lived" means they passed.
func goTest(ctx context.Context, root, overlay, pkgs, run string, timeout time.Duration, env []string) outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"test", "-failfast", "-timeout", (timeout + 30*time.Second).String()}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	if run != "" {
		args = append(args, "-run", run)
	}
	args = append(args, strings.Fields(pkgs)...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = root, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	o := outcome{elapsed: time.Since(start), output: out.String()}
	switch {
	case ctx.Err() != nil:
		o.status = "hung"
	case err == nil:
		o.status = "lived"
	case strings.Contains(o.output, "[build failed]") || strings.Contains(o.output, "[setup failed]"):
		o.status = "not viable"
	default:
		o.status = "killed"
		if m := failRE.FindStringSubmatch(o.output); m != nil {
			o.by = m[1]
		}
	}
	return o
}

// excerpt is the heart of a failure report: for the harness's, the broken
// rules and the shrunk scenario; else the first lines after the failing
// test's name.
func excerpt(out string) string {
	if i := strings.LastIndex(out, "phasetest: the lifecycle rules were broken:"); i >= 0 {
		report := out[i:]
		if j := strings.Index(report, "start  new -> access"); j >= 0 {
			report = report[:strings.LastIndex(report[:j], "\n")]
		}
		return strings.TrimSpace(report)
	}
	if m := failRE.FindStringIndex(out); m != nil {
		lines := strings.SplitN(out[m[0]:], "\n", 5)
		return strings.TrimSpace(strings.Join(lines[:min(len(lines), 4)], "\n"))
	}
	return lastLines(out, 5)
}

func (r *semanticResult) print(w io.Writer, show bool) {
	for _, b := range r.broken {
		fmt.Fprintf(w, "   BROKEN    %s\n", b)
	}
	for _, o := range r.outcomes {
		if o.m == nil {
			continue
		}
		where := fmt.Sprintf("%s %s", o.m.File, o.m.Edits[0].Func)
		switch o.status {
		case "killed":
			fmt.Fprintf(w, "   killed    %s (%s) by %s in %s\n", o.m.Name, where, o.by, o.elapsed.Round(100*time.Millisecond))
			if show {
				fmt.Fprintf(w, "%s\n", indent(excerpt(o.output)))
			}
		default:
			fmt.Fprintf(w, "   %-9s %s (%s): %s\n", strings.ToUpper(o.status), o.m.Name, where, o.m.Why)
			if o.status != "lived" {
				fmt.Fprintf(w, "%s\n", indent(lastLines(o.output, 30)))
			}
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string { return "      " + strings.ReplaceAll(s, "\n", "\n      ") }
