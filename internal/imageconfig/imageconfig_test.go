package imageconfig

import (
	"context"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// push puts an image with cfg in the registry at host under repo:tag.
func push(t *testing.T, host, ref string, cfg v1.Config) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}

// The configuration comes from a real registry over HTTP, then from the
// cache (the registry gone); a missing image is NotFound, an unreachable
// registry Unavailable, a bad reference Invalid.
func TestConfig(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	push(t, host, "conveyor-test/tool:1", v1.Config{Entrypoint: []string{"/bin/tool"}, Cmd: []string{"--help"}, WorkingDir: "/work", User: "1000", Env: []string{"PATH=/bin", "A=b"}})
	r := New(Options{Timeout: 5 * time.Second})
	ctx := context.Background()
	c, err := r.Config(ctx, host+"/conveyor-test/tool:1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Entrypoint, []string{"/bin/tool"}) || !slices.Equal(c.Cmd, []string{"--help"}) || c.WorkingDir != "/work" || c.User != "1000" || !slices.Contains(c.Env, "A=b") {
		t.Errorf("config %+v", c)
	}
	_, err = r.Config(ctx, host+"/conveyor-test/none:1")
	if !errs.Is(err, errs.NotFound) {
		t.Errorf("missing image: %v (kind %v)", err, errs.KindOf(err))
	}
	srv.Close()
	if c2, err := r.Config(ctx, host+"/conveyor-test/tool:1"); err != nil || c2.User != "1000" {
		t.Errorf("from the cache: %+v, %v", c2, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	start := time.Now()
	if _, err := r.Config(ctx, closed+"/x/y:1"); !errs.Is(err, errs.Unavailable) {
		t.Errorf("unreachable registry: %v (kind %v)", err, errs.KindOf(err))
	}
	if _, err := r.Config(ctx, "UPPER/Case:bad tag"); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad reference: %v", err)
	}
	t.Logf("unreachable registry answered in %s", time.Since(start).Round(time.Millisecond))
}

// The cache keeps Max references, dropping the one that expires first,
// and forgets an entry after its TTL.
func TestCacheBounds(t *testing.T) {
	r := New(Options{Max: 2, TTL: time.Minute, FailTTL: time.Second})
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	r.keep("a", Config{User: "a"}, nil)
	now = now.Add(time.Second)
	r.keep("b", Config{User: "b"}, nil)
	r.keep("c", Config{User: "c"}, nil)
	if _, _, ok := r.cached("a"); ok {
		t.Error("a, the first to expire, was kept past Max")
	}
	for _, k := range []string{"b", "c"} {
		if c, _, ok := r.cached(k); !ok || c.User != k {
			t.Errorf("%s: %+v %v", k, c, ok)
		}
	}
	r.keep("b", Config{}, errs.E("x", errs.Unavailable, "down"))
	now = now.Add(2 * time.Second)
	if _, _, ok := r.cached("b"); ok {
		t.Error("a failed lookup was kept past FailTTL")
	}
	if _, _, ok := r.cached("c"); !ok {
		t.Error("c expired before its TTL")
	}
}
