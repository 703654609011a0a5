package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profileAll profiles phasegate (a build with the pprof overlay) and the
// bare proxy under each workload after the measurements, so that profiling
// never distorts the reported figures: a CPU profile and an allocation
// profile (the delta over the same window) per server and workload,
// written to o.profileDir with the phasegate binary. Each profile's pprof
// command is reported through progress. pprof is phasegate's pprof
// address; ts are phasegate's plain, plain chat and AI targets, then the
// bare proxy.
func profileAll(ctx context.Context, o *options, bin, pprof string, ts []*target, withAI bool, progress func(string)) error {
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		return err
	}
	binCopy := filepath.Join(o.profileDir, "phasegate")
	if err := copyFile(bin, binCopy); err != nil {
		return err
	}
	type job struct {
		name  string
		t     *target
		w     *workload
		pprof string
		// conc > 0: a closed loop of conc streams, as the section measures
		// streams back to back; else streams at o.streamRate.
		conc int
	}
	bare := ts[3]
	stream := streamWorkload(o.chunks, o.chunkDelay.String())
	burst := burstWorkload(o.burstChunks)
	jobs := []job{
		{"plain", ts[0], plainWorkload(), pprof, 0},
		{"bare-plain", bare, plainWorkload(), bare.admin, 0},
		{"plain-chat", ts[1], chatWorkload(), pprof, 0},
		{"bare-chat", bare, chatWorkload(), bare.admin, 0},
		{"plain-stream", ts[1], stream, pprof, 0},
		{"bare-stream", bare, stream, bare.admin, 0},
		{"plain-burst", ts[1], burst, pprof, o.burstConcurrency},
		{"bare-burst", bare, burst, bare.admin, o.burstConcurrency},
	}
	if withAI {
		jobs = append(jobs,
			job{"ai-chat", ts[2], chatWorkload(), pprof, 0},
			job{"ai-stream", ts[2], stream, pprof, 0},
			job{"ai-burst", ts[2], burst, pprof, o.burstConcurrency})
	}
	secs := max(1, int(o.duration.Seconds()))
	for _, j := range jobs {
		progress(fmt.Sprintf("profiling %s, %ds", j.name, secs))
		c := newClient(max(o.concurrency, j.conc))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		files := []string{
			filepath.Join(o.profileDir, j.name+".cpu.pprof"),
			filepath.Join(o.profileDir, j.name+".allocs.pprof"),
		}
		for i, path := range []string{"profile", "allocs"} {
			wg.Go(func() {
				errs[i] = fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", j.pprof, path, secs), files[i])
			})
		}
		// Load a little longer than the profile window on both sides.
		d := time.Duration(secs)*time.Second + 500*time.Millisecond
		var res *tally
		if j.w.stream && j.conc == 0 {
			res, _ = openLoop(ctx, c, j.t, j.w, o.streamRate, d)
		} else {
			res, _ = closedLoop(ctx, c, j.t, j.w, cmp.Or(j.conc, o.concurrency), d)
		}
		wg.Wait()
		c.CloseIdleConnections()
		if err := firstError(ctx, j.t, res); err != nil {
			return err
		}
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		progress(fmt.Sprintf("profile %s: go tool pprof -top %s %s (allocations: -sample_index=alloc_space %s)",
			j.name, binCopy, files[0], files[1]))
	}
	return nil
}

// fetch saves the body of url into file.
func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}
