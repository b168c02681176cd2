package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPprofListen(t *testing.T) {
	stop, at, err := servePprof("", io.Discard)
	if err != nil || at != "" {
		t.Fatalf("off by default: %q %v", at, err)
	}
	stop()
	var log strings.Builder
	stop, at, err = servePprof("127.0.0.1:0", &log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + at + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("GET goroutine profile: %d %.100q", resp.StatusCode, body)
	}
	if !strings.Contains(log.String(), at) {
		t.Errorf("the address is not logged: %q", log.String())
	}
	if _, _, err := servePprof(at, io.Discard); err == nil {
		t.Error("a second listener on the same address did not fail")
	}
}
