package forgetest

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestRecorder(t *testing.T) {
	r := NewRecorder(t).Fail(2, http.StatusServiceUnavailable)
	r.Fail(1, http.StatusUnauthorized)
	var codes []int
	for _, body := range []string{`{"a":1}`, `[1]`, `x`, `{}`} {
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/projects/g%2Fp/statuses/s", strings.NewReader(body))
		req.Header.Set("PRIVATE-TOKEN", "t")
		resp, err := r.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if want := []int{503, 503, 401, 201}; !slices.Equal(codes, want) {
		t.Errorf("codes = %v, want %v", codes, want)
	}
	calls := r.Calls()
	if len(calls) != 4 {
		t.Fatalf("%d calls", len(calls))
	}
	c := calls[0]
	if c.Method != "POST" || c.Path != "/projects/g%2Fp/statuses/s" || c.Header.Get("Private-Token") != "t" || c.JSON["a"] != float64(1) {
		t.Errorf("call = %+v", c)
	}
	if calls[1].JSON != nil || string(calls[2].Body) != "x" {
		t.Errorf("non-object bodies: %+v %+v", calls[1], calls[2])
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := r.Client().Get(r.URL + "/x")
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if n := len(r.Calls()); n != 20 {
		t.Errorf("%d calls, want 20", n)
	}
}
