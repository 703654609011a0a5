package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const src = `package p

func (s *S) Close() {
	if s.closed {
		return
	}
	s.release(1)
	s.release(2)
}

func Other() { s.release(1) }
`

func TestFindInFuncIgnoresLayoutAndNeedsOneMatch(t *testing.T) {
	start, end, err := findInFunc([]byte(src), "(*S).Close", "if s.closed { return }")
	if err != nil {
		t.Fatal(err)
	}
	if got := src[start:end]; got != "if s.closed {\n\t\treturn\n\t}" {
		t.Fatalf("matched %q", got)
	}
	for find, want := range map[string]string{
		"s.release(":     "occurs 2 times",
		"s.release(3)":   "occurs 0 times",
		"s.closed = nil": "occurs 0 times",
	} {
		if _, _, err := findInFunc([]byte(src), "(*S).Close", find); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("find %q: %v, want %q", find, err, want)
		}
	}
	if _, _, err := findInFunc([]byte(src), "(*S).Open", "return"); err == nil || !strings.Contains(err.Error(), "no function") {
		t.Errorf("a missing function: %v", err)
	}
	if _, _, err := findInFunc([]byte(src), "Other", "s.release(1)"); err != nil {
		t.Errorf("a plain function: %v", err)
	}
}

func TestStaleMutantsFailLoudly(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(json string) string {
		path := filepath.Join(dir, "mutants.json")
		if err := os.WriteFile(path, []byte(json), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ms, err := loadMutants(dir, write(`[{"name":"skip","why":"w","file":"p.go","test":"./...","edits":[{"func":"(*S).Close","find":"s.release(2)","replace":""}]}]`))
	if err != nil || len(ms) != 1 || strings.Contains(string(ms[0].mutated), "s.release(2)") || !strings.Contains(string(ms[0].mutated), "s.release(1)") {
		t.Fatalf("%v %q", err, ms)
	}
	_, err = loadMutants(dir, write(`[
		{"name":"gone","why":"w","file":"p.go","test":"./...","edits":[{"func":"(*S).Close","find":"s.release(9)","replace":""}]},
		{"name":"moved","why":"w","file":"q.go","test":"./...","edits":[{"func":"(*S).Close","find":"return","replace":""}]},
		{"name":"broken","why":"w","file":"p.go","test":"./...","edits":[{"func":"Other","find":"s.release(1)","replace":"{"}]},
		{"name":"gone","why":"w","file":"p.go","test":"./...","edits":[{"func":"Other","find":"s.release(1)","replace":""}]},
		{"name":"incomplete","file":"p.go"}
	]`))
	for _, want := range []string{`stale mutant "gone"`, `stale mutant "moved"`, `stale mutant "broken"`, `mutant "gone" appears twice`, `stale mutant "incomplete"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in %v", want, err)
		}
	}
	if _, err := loadMutants(dir, write(`[{"name":"x","colour":"red"}]`)); err == nil {
		t.Error("an unknown field was accepted")
	}
}

func TestTargets(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a/x.go", "a/y.go", "a/y_test.go", "a/sub/z.go"} {
		path := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("package a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	target, excluded, err := targetFiles(dir, "a/x.go", nil)
	if err != nil || target != "a" || strings.Join(excluded, ",") != "a/sub/z.go,a/y.go" {
		t.Fatalf("%q %v %v", target, excluded, err)
	}
	if got := excludesUnder("a", excluded); strings.Join(got, " ") != `^sub/z\.go$ ^y\.go$` {
		t.Fatalf("patterns %v", got)
	}
	if got := excludesUnder("a", []string{"a/sub/", "b/c.go"}); strings.Join(got, " ") != "^sub/" {
		t.Fatalf("patterns %v", got)
	}
	if got := split(" a/, b ,,c/d.go"); strings.Join(got, " ") != "a/ b c/d.go" {
		t.Fatalf("split %v", got)
	}
}

func TestExcerpt(t *testing.T) {
	out := "--- FAIL: TestX (0.01s)\n    x_test.go:1: [rapid] failed\n        phasetest: the lifecycle rules were broken:\n          - rule\n        \n        trace:\n        scenario:\n          upstream ok\n        start  new -> access\n        more\n"
	if got := excerpt(out); !strings.HasSuffix(got, "upstream ok") || strings.Contains(got, "start") {
		t.Fatalf("excerpt %q", got)
	}
	if got := excerpt("ok\n--- FAIL: TestY (0s)\n    y.go:3: boom\nFAIL\n"); !strings.HasPrefix(got, "--- FAIL: TestY") || !strings.Contains(got, "boom") {
		t.Fatalf("excerpt %q", got)
	}
}
