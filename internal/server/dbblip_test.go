package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// blipProxy forwards TCP connections to a database; drop closes every
// connection and refuses new ones for a while: the database is gone, as
// far as the server can tell, then back.
type blipProxy struct {
	ln        net.Listener
	mu        sync.Mutex
	conns     map[net.Conn]bool
	downUntil time.Time
	refused   int
	// trigger, seen in what a client sends, drops every connection for
	// outage instead of passing it on (once).
	trigger []byte
	outage  time.Duration
	fired   time.Time
}

func newBlipProxy(t *testing.T, target string) *blipProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blipProxy{ln: ln, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := time.Now().Before(p.downUntil)
			if down {
				p.refused++
			}
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				if dst == up {
					_, _ = io.Copy(dst, p.watch(src))
				} else {
					_, _ = io.Copy(dst, src)
				}
				dst.Close()
				src.Close()
				p.mu.Lock()
				delete(p.conns, dst)
				delete(p.conns, src)
				p.mu.Unlock()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.drop(0)
	})
	return p
}

// watch reads what a client sends; at the trigger it drops everything.
func (p *blipProxy) watch(src net.Conn) io.Reader {
	return readerFunc(func(b []byte) (int, error) {
		n, err := src.Read(b)
		p.mu.Lock()
		defer p.mu.Unlock()
		if n > 0 && p.trigger != nil && p.fired.IsZero() && bytes.Contains(b[:n], p.trigger) {
			p.fired = time.Now()
			p.dropLocked(p.outage)
			return 0, io.ErrUnexpectedEOF
		}
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// drop cuts every connection and refuses new ones for d.
func (p *blipProxy) drop(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked(d)
}

func (p *blipProxy) dropLocked(d time.Duration) {
	p.downUntil = time.Now().Add(d)
	for c := range p.conns {
		c.Close()
	}
}

// blipFlow has 8 jobs that record each execution in marks, print lines,
// wait for the gate file, then print their last lines and end.
func blipFlow(marks, gate string) string {
	f := "name: Blip\non: push\njobs:\n"
	for i := 1; i <= 8; i++ {
		f += fmt.Sprintf(`  j%d:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "j%[1]d" >> '%[2]s'
          for i in 1 2 3 4 5; do echo "early-$i"; done
          for i in $(seq 600); do [ -f '%[3]s' ] && break; sleep 0.1; done
          for i in 1 2 3 4 5; do echo "late-$i"; done
`, i, marks, gate)
	}
	return f
}

// TestJobsFinishAcrossDatabaseBlip: PostgreSQL behind a TCP proxy; 8 jobs
// run and are let finish together. The first completion sent to the
// database makes the proxy drop every connection (that completion is
// never received) and refuse new ones for the outage, while the other
// jobs finish: their last log lines and their completions meet a dead
// database too.
//
// Outage (2 s) shorter than the lease (10 s): every job runs exactly once
// (attempt 1, no interrupted attempt) and its log holds every line once.
//
// Outage (20 s) longer than the lease (5 s): every lease runs out in the
// outage. The store would take a late completion until Expire hands the
// job on, and the server's expire loop gives leases that ran out in an
// outage one more TTL from the store's return (outageGrace), in which the
// workers' retried heartbeats and completions get in: again every job
// runs once. Were a completion not recorded in that time, the job would
// run again; what holds then too is checked for every job: it ran once
// per lease it got (executions = attempts, attempts-1 interrupted ones
// recorded, so a completed job never ran again), and the log holds every
// line of every execution exactly once (none lost, none stored twice by a
// retry).
func TestJobsFinishAcrossDatabaseBlip(t *testing.T) {
	for _, c := range []struct {
		name        string
		outage, ttl time.Duration
		exactlyOnce bool
	}{
		{"2s", 2 * time.Second, 10 * time.Second, true},
		{"20s", 20 * time.Second, 5 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dsn := testenv.PostgresSchema(t, "blip")
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			proxy := newBlipProxy(t, u.Host)
			// The first job's completion (its results name the job as JSON;
			// log chunks never do) takes the database away.
			proxy.trigger, proxy.outage = []byte(`"job":"j`), c.outage
			u.Host = proxy.ln.Addr().String()
			tmp := t.TempDir()
			marks, gate := filepath.Join(tmp, "marks"), filepath.Join(tmp, "gate")
			h := newHarness(t, harnessOpts{dsn: u.String(), cfg: Config{Workers: 8, LeaseTTL: c.ttl},
				files: map[string]string{".github/workflows/blip.yml": blipFlow(marks, gate)}})
			h.hook("push", h.push("main"), "d-blip")
			waitFor(t, 60*time.Second, "8 jobs running", func() bool {
				b, _ := os.ReadFile(marks)
				return strings.Count(string(b), "\n") >= 8
			})
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var run *store.Run
			waitFor(t, c.outage+90*time.Second, "the run to end", func() bool {
				runs, err := h.st.ListRuns(context.Background(), 1, store.RunFilter{}) // fails in the outage
				if err == nil && len(runs) == 1 && store.Terminal(runs[0].Status) {
					run = runs[0]
				}
				return run != nil
			})
			proxy.mu.Lock()
			refused, fired := proxy.refused, proxy.fired
			proxy.mu.Unlock()
			if fired.IsZero() || refused == 0 {
				t.Errorf("no completion met the outage (fired %v, %d connections refused): the test tested nothing", fired, refused)
			}
			var d api.RunDetail
			h.api("GET", "/api/runs/"+itoa(run.ID), nil, 200, &d)
			if d.Run.Status != store.StatusSuccess {
				t.Errorf("run %s (%s)", d.Run.Status, d.Run.Error)
			}
			b, _ := os.ReadFile(marks)
			reran := 0
			for _, j := range d.Jobs {
				execs := strings.Count(string(b), j.Key+"\n")
				if execs > 1 {
					reran++
				}
				if c.exactlyOnce && (execs != 1 || j.Attempt != 1 || len(j.Interrupted) != 0) {
					t.Errorf("job %s ran %d times, attempt %d, interrupted %+v", j.Key, execs, j.Attempt, j.Interrupted)
				}
				if execs != j.Attempt || len(j.Interrupted) != j.Attempt-1 || j.Status != store.StatusSuccess {
					t.Errorf("job %s: %s, ran %d times in %d attempts, interrupted %+v", j.Key, j.Status, execs, j.Attempt, j.Interrupted)
				}
				log := h.jobLog(d.Run.ID, j.Key)
				for i := 1; i <= 5; i++ {
					for _, l := range []string{fmt.Sprintf("early-%d", i), fmt.Sprintf("late-%d", i)} {
						if n := strings.Count(log, "\n"+l+"\n"); n != execs {
							t.Errorf("job %s: %q is %d times in the log, want %d (executions):\n%s", j.Key, l, n, execs, log)
						}
					}
				}
			}
			t.Logf("outage %s, lease %s: %d of %d jobs ran again after their lease expired in the outage", c.outage, c.ttl, reran, len(d.Jobs))
		})
	}
}

// After the store's outage, leases that ran out in it are expired only
// one TTL after its return; those that ran out before it at once.
func TestOutageGrace(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ttl := 5 * time.Second
	var g outageGrace
	down := errors.New("connection refused")
	for _, c := range []struct {
		now  float64
		err  error
		want float64 // cutoff given before the call
	}{
		{0, nil, 0},
		{1, down, 1},  // the outage begins
		{2, down, 1},  // it goes on: leases that ran out since 1 wait
		{10, nil, 1},  // back
		{12, down, 1}, // a blip within the grace: it keeps its start
		{13, nil, 1},  // back again: a TTL from now
		{17, nil, 1},  // within the TTL
		{18, nil, 18}, // past it: as usual
		{19, nil, 19},
	} {
		if got := g.cutoff(at(c.now), ttl); !got.Equal(at(c.want)) {
			t.Errorf("at %vs: cutoff %v, want %vs", c.now, got.Sub(t0), c.want)
		}
		g.saw(at(c.now), c.err)
	}
}
