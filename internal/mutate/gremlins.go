package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// gremlinsOutput is the part of gremlins' -output file read here.
type gremlinsOutput struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

// operatorMutant is one of gremlins' mutants that the tests did not kill.
type operatorMutant struct {
	file, fn, kind, status, source string
	line, col                      int
}

type gremlinsResult struct {
	target  string
	counts  map[string]int
	lived   []operatorMutant
	elapsed time.Duration
	tally
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

// runGremlins runs gremlins over target (a directory relative to root).
func runGremlins(ctx context.Context, root, gremlins, target string, exclude []string, workers, coeff int, env []string) (*gremlinsResult, error) {
	out, err := os.CreateTemp("", "gremlins-*.json")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	args := []string{"run", gremlins, "unleash", "--workers", fmt.Sprint(workers), "--timeout-coefficient", fmt.Sprint(coeff), "--output", out.Name()}
	for _, e := range exclude {
		args = append(args, "--exclude-files", e)
	}
	args = append(args, filepath.Join(root, target))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = root, env
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gremlins over %s: %w\n%s", target, err, log.String())
	}
	raw, err := os.ReadFile(out.Name())
	if err != nil {
		return nil, err
	}
	var res gremlinsOutput
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("gremlins over %s: reading its report: %w", target, err)
	}
	r := &gremlinsResult{target: target, counts: map[string]int{}, elapsed: time.Since(start)}
	for _, f := range res.Files {
		file := filepath.ToSlash(filepath.Join(target, f.Name))
		for _, m := range f.Mutations {
			r.counts[m.Status]++
			switch m.Status {
			case "KILLED", "TIMED OUT":
				r.killed++
				r.covered++
			case "LIVED":
				r.covered++
				fn, src := locate(filepath.Join(root, file), m.Line)
				r.lived = append(r.lived, operatorMutant{file: file, fn: fn, kind: m.Type, status: m.Status, source: src, line: m.Line, col: m.Column})
			}
			if m.Status == "TIMED OUT" {
				r.lived = append(r.lived, operatorMutant{file: file, kind: m.Type, status: m.Status, line: m.Line, col: m.Column})
			}
		}
	}
	sort.Slice(r.lived, func(i, j int) bool {
		a, b := r.lived[i], r.lived[j]
		if a.file != b.file {
			return a.file < b.file
		}
		return a.line < b.line || a.line == b.line && a.col < b.col
	})
	return r, nil
}

func (r *gremlinsResult) print(w io.Writer) {
	fmt.Fprintf(w, "== gremlins %s: %d killed, %d lived, %d timed out, %d not covered, %d not viable (%s)\n",
		r.target, r.counts["KILLED"], r.counts["LIVED"], r.counts["TIMED OUT"], r.counts["NOT COVERED"], r.counts["NOT VIABLE"], r.elapsed.Round(time.Second))
	for _, m := range r.lived {
		if m.status == "TIMED OUT" {
			// Killed, but by a hang: the tests should fail fast instead.
			fmt.Fprintf(w, "   %-9s %s:%d:%d %s\n", m.status, m.file, m.line, m.col, m.kind)
			continue
		}
		fmt.Fprintf(w, "   %-9s %s:%d:%d %s in %s: %s\n", m.status, m.file, m.line, m.col, m.kind, m.fn, m.source)
	}
}

// locate returns the function enclosing line in file, and the line's text.
func locate(file string, line int) (fn, src string) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "?", "?"
	}
	if lines := strings.Split(string(data), "\n"); line >= 1 && line <= len(lines) {
		src = strings.TrimSpace(lines[line-1])
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, data, 0)
	if err != nil {
		return "?", src
	}
	fn = "(package level)"
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fset.Position(fd.Pos()).Line <= line && line <= fset.Position(fd.End()).Line {
			fn = funcName(fd)
		}
	}
	return fn, src
}

// funcName renders a declaration's name as mutants name it: "Close",
// "(*Scope).Close", "(Binding).Release".
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	star := ""
	if se, ok := t.(*ast.StarExpr); ok {
		star, t = "*", se.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok { // a generic receiver
		t = ix.X
	}
	name := "?"
	if id, ok := t.(*ast.Ident); ok {
		name = id.Name
	}
	return "(" + star + name + ")." + fd.Name.Name
}
