package logs

import (
	"strings"
	"testing"
)

func TestMasker(t *testing.T) {
	m := NewMasker()
	m.Add("s3cret")
	m.Add("line one\nline two")
	m.Add("x") // too short: ignored
	m.Add("s3cret-longer")
	cases := map[string]string{
		"token s3cret here":       "token *** here",
		"s3cret-longer":           "***",
		"a line one b":            "a *** b",
		"line two":                "***",
		"x marks":                 "x marks",
		"nothing to hide":         "nothing to hide",
		"line one\nline two done": "*** done",
	}
	for in, want := range cases {
		if got := m.Apply(in); got != want {
			t.Errorf("Apply(%q) = %q, want %q", in, got, want)
		}
	}
	var nilM *Masker
	if nilM.Apply("s3cret") != "s3cret" {
		t.Error("nil masker must pass text through")
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := NewLineWriter(func(l string) { got = append(got, l) })
	w.Write([]byte("a\r\nb"))
	w.Write([]byte("c\n\nd"))
	w.Flush()
	want := []string{"a", "bc", "", "d"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q want %q", got, want)
	}
	got = nil
	w.Write([]byte(strings.Repeat("z", MaxLine+10)))
	w.Flush()
	if len(got) != 2 || len(got[0]) != MaxLine || len(got[1]) != 10 {
		t.Fatalf("long line split wrong: %d pieces", len(got))
	}
}

func TestHubWakesWaiters(t *testing.T) {
	h := NewHub()
	a, b := h.Wait(1), h.Wait(1)
	other := h.Wait(2)
	h.Notify(1)
	for _, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		default:
			t.Fatal("waiter of job 1 not woken")
		}
	}
	select {
	case <-other:
		t.Fatal("waiter of job 2 woken by job 1")
	default:
	}
	h.Notify(3) // nobody waits: no panic
	select {
	case <-h.Wait(1):
		t.Fatal("a new wait after notify is already closed")
	default:
	}
}
