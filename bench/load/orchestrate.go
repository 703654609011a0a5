package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

// measureAll starts the servers, runs the sections asked for and returns
// the report (its run facts are filled in by the caller).
func measureAll(ctx context.Context, o *options, progress func(string)) (*report, error) {
	// Every stream of the many-streams mode holds a connection in the
	// harness, two in the proxy and one in the upstream.
	if note := harness.RaiseNoFile(uint64(2*o.streams + 1024)); note != "" {
		progress("warning: " + note)
	}
	root, err := harness.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "phasegate-load-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		progress("temporary files kept in " + dir)
	} else {
		defer os.RemoveAll(dir)
	}

	progress("go build ./cmd/phasegate")
	bin, err := buildPhasegate(ctx, root, dir, o.overlay, o.profileDir != "")
	if err != nil {
		return nil, err
	}
	up, err := startSelf(ctx, "upstream", dir, pin.upstreamCPU, "-serve-upstream")
	if err != nil {
		return nil, err
	}
	bareArgs := []string{"-serve-bare-proxy", "-upstream", up.Listen, fmt.Sprintf("-bare-buffer-pool=%t", o.barePool)}
	bare, err := startSelf(ctx, "bare-proxy", dir, serverCPU, bareArgs...)
	if err != nil {
		return nil, err
	}

	var floor *harness.Proc
	if o.floor {
		if floor, err = startSelf(ctx, "floor-proxy", dir, serverCPU, "-serve-floor-proxy", "-upstream", up.Listen); err != nil {
			return nil, err
		}
	}

	// The AI route needs the ai-proxy plugin; without it the gateway
	// rejects the config, and the AI route is left out (and said so).
	r := &report{Settings: o.settings, Pin: pin, BarePool: o.barePool, Overlay: o.overlay, NoAccessLog: !o.accessLog, Floor: o.floor}
	config := filepath.Join(dir, "phasegate.yaml")
	if err := phasegateConfig(up.Listen, true, o.accessLog).WriteFile(config); err != nil {
		return nil, err
	}
	withAI := true
	if err := harness.Validate(ctx, bin, config); err != nil {
		if !strings.Contains(err.Error(), `"ai-proxy"`) {
			return nil, fmt.Errorf("phasegate validate: %w", err)
		}
		withAI = false
		r.AINote = "this build's gateway does not know the ai-proxy plugin (`phasegate validate`: " + lineWith(err.Error(), `"ai-proxy"`) + ")."
		progress("phasegate AI route left out: ai-proxy is not registered")
		if err := phasegateConfig(up.Listen, false, o.accessLog).WriteFile(config); err != nil {
			return nil, err
		}
		if err := harness.Validate(ctx, bin, config); err != nil {
			return nil, fmt.Errorf("phasegate validate: %w", err)
		}
	}
	pg, err := startPhasegate(ctx, "phasegate", bin, config, dir, o.profileDir != "")
	if err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("upstream %s, bare proxy %s, phasegate %s (admin %s)", up.Listen, bare.Listen, pg.Listen, pg.Admin))

	direct := &target{Name: "direct", Key: keyDirect, base: "http://" + up.Listen, proc: up}
	bareT := &target{Name: "bare proxy", Key: keyBare, base: "http://" + bare.Listen, admin: bare.Admin, proc: bare}
	pgPlain := &target{Name: "phasegate plain", Key: keyPlain, base: "http://" + pg.Listen, admin: pg.Admin, proc: pg.Proc}
	pgPlainChat := *pgPlain
	pgPlainChat.host = plainChatHost
	pgAI := &target{Name: "phasegate AI", Key: keyAI, base: "http://" + pg.Listen, admin: pg.Admin, proc: pg.Proc}
	logs := []*harness.Proc{pg.Proc} // phasegate processes, whose access logs are emptied between sections
	plainTargets := []*target{direct, bareT}
	if floor != nil {
		plainTargets = append(plainTargets, &target{Name: "net/http floor", Key: keyFloor, base: "http://" + floor.Listen, admin: floor.Admin, proc: floor})
	}
	chatTargets := append(slices.Clone(plainTargets), &pgPlainChat)
	plainTargets = append(plainTargets, pgPlain)
	if withAI {
		chatTargets = append(chatTargets, pgAI)
	}
	if o.abOverlay != "" {
		dirB := filepath.Join(dir, "b")
		if err := os.Mkdir(dirB, 0o755); err != nil {
			return nil, err
		}
		progress("go build ./cmd/phasegate with -overlay " + o.abOverlay)
		binB, err := buildPhasegate(ctx, root, dirB, o.abOverlay, false)
		if err != nil {
			return nil, err
		}
		pgB, err := startPhasegate(ctx, "phasegate-b", binB, config, dirB, false)
		if err != nil {
			return nil, err
		}
		plainB := &target{Name: "phasegate plain B", Key: keyPlainB, base: "http://" + pgB.Listen, admin: pgB.Admin, proc: pgB.Proc}
		plainChatB := *plainB
		plainChatB.host = plainChatHost
		plainTargets = append(plainTargets, plainB)
		chatTargets = append(chatTargets, &plainChatB)
		if withAI {
			chatTargets = append(chatTargets, &target{Name: "phasegate AI B", Key: keyAIB, base: "http://" + pgB.Listen, admin: pgB.Admin, proc: pgB.Proc})
		}
		r.ABOverlay = o.abOverlay
		logs = append(logs, pgB.Proc)
	}

	mockNote := "the bench upstream's OpenAI-compatible mock (package mockllm), for every target; " +
		"phasegate's plain route is a plain `upstream:` route to it (selected by Host), its AI route goes through ai-proxy"
	if o.wants("plain") {
		s := &section{
			Title:    "Plain HTTP: `GET /plain`",
			Upstream: fmt.Sprintf("the bench upstream's `GET /plain`, a fixed %d-byte JSON body, for every target", len(plainBody)),
			Workload: plainWorkload(),
			Targets:  plainTargets,
		}
		truncateLogs(logs)
		if err := runThroughput(ctx, s, o.settings, progress); err != nil {
			return nil, err
		}
		r.Sections = append(r.Sections, s)
	}
	if o.wants("chat") {
		s := &section{
			Title:    "Chat completion, not streamed: `POST /v1/chat/completions`",
			Upstream: mockNote,
			Workload: chatWorkload(),
			Targets:  chatTargets,
		}
		truncateLogs(logs)
		if err := runThroughput(ctx, s, o.settings, progress); err != nil {
			return nil, err
		}
		r.Sections = append(r.Sections, s)
	}
	if o.wants("stream") {
		s := &section{
			Title:    fmt.Sprintf("Chat completion, streamed: %d content events, %s apart", o.chunks, o.chunkDelay),
			Upstream: mockNote + fmt.Sprintf("; `X-Mock-Chunks: %d`, `X-Mock-Chunk-Delay: %s`", o.chunks, o.chunkDelay),
			Workload: streamWorkload(o.chunks, o.chunkDelay.String()),
			Targets:  chatTargets,
			Stream:   true,
		}
		truncateLogs(logs)
		if err := runStreams(ctx, s, o.settings, progress); err != nil {
			return nil, err
		}
		r.Sections = append(r.Sections, s)
	}
	if o.wants("burst") {
		s := &section{
			Title:       fmt.Sprintf("Chat completion, streamed: %d content events back to back", o.burstChunks),
			Upstream:    mockNote + fmt.Sprintf("; `X-Mock-Chunks: %d`, `X-Mock-Chunk-Delay: 0s`", o.burstChunks),
			Workload:    burstWorkload(o.burstChunks),
			Targets:     chatTargets,
			Events:      o.burstChunks,
			Concurrency: o.burstConcurrency,
		}
		truncateLogs(logs)
		if err := runThroughput(ctx, s, o.settings, progress); err != nil {
			return nil, err
		}
		r.Sections = append(r.Sections, s)
	}
	if o.profileDir != "" {
		if err := profileAll(ctx, o, bin, pg.pprof, []*target{pgPlain, &pgPlainChat, pgAI, bareT}, withAI, progress); err != nil {
			return nil, err
		}
	}
	// The many-streams mode starts fresh servers: the loops above grew the
	// heaps, which would hide what the streams cost.
	_, _ = bare.Stop(5 * time.Second)
	if floor != nil {
		_, _ = floor.Stop(5 * time.Second)
	}
	for _, p := range logs {
		_, _ = p.Stop(10 * time.Second)
	}
	if o.wants("streams") && o.streams > 0 {
		if o.streams < 2000 {
			r.ManyNote = fmt.Sprintf("%s streams (the default run's count); the issue's 2,000 is `-streams 2000`.", fmtInt(float64(o.streams)))
		}
		if r.Many, err = runMany(ctx, o, dir, bin, config, bareArgs, withAI, progress); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// runMany holds o.streams slow streams open through a fresh bare proxy,
// then through a fresh phasegate (its AI route, else its plain route to
// the mock), one after the other.
func runMany(ctx context.Context, o *options, dir, bin, config string, bareArgs []string, withAI bool, progress func(string)) ([]*manyResult, error) {
	route := "phasegate's AI route"
	if !withAI {
		route = "phasegate's plain route to the mock (the AI route is not available)"
	}
	b, err := startSelf(ctx, "bare-proxy-streams", dir, serverCPU, bareArgs...)
	if err != nil {
		return nil, err
	}
	mb, err := manyStreams(ctx, &target{Name: "bare proxy", Key: keyBare, base: "http://" + b.Listen, admin: b.Admin, proc: b}, route, o.streams, o.streamHold, progress)
	if err != nil {
		return nil, err
	}
	_, _ = b.Stop(5 * time.Second)
	pg, err := startPhasegate(ctx, "phasegate-streams", bin, config, dir, false)
	if err != nil {
		return nil, err
	}
	t := &target{Name: "phasegate AI", Key: keyAI, base: "http://" + pg.Listen, admin: pg.Admin, proc: pg.Proc}
	if !withAI {
		t.Name, t.Key, t.host = "phasegate plain", keyPlain, plainChatHost
	}
	mp, err := manyStreams(ctx, t, route, o.streams, o.streamHold, progress)
	if err != nil {
		return nil, err
	}
	_, _ = pg.Stop(10 * time.Second)
	return []*manyResult{mb, mp}, nil
}

func truncateLogs(ps []*harness.Proc) {
	for _, p := range ps {
		p.TruncateLog()
	}
}

// lineWith returns the first line of s containing sub, without the file
// name it starts with.
func lineWith(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			line = strings.TrimSpace(line)
			if i := strings.Index(line, ": "); i >= 0 {
				line = line[i+2:]
			}
			return line
		}
	}
	return strings.TrimSpace(s)
}
