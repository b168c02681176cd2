package logs

import (
	"fmt"
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

func TestBatchLineWriter(t *testing.T) {
	var calls [][]string
	w := NewBatchLineWriter(func(ls []string) {
		if len(ls) == 0 {
			t.Error("called with no lines")
		}
		calls = append(calls, append([]string(nil), ls...))
		ls[0] = "changed by the callee" // allowed: the slice is the callee's during the call
	})
	for _, p := range []string{"a\r\nb", "c\n\nd\ne", "", "f", "\n", "g\r", "\nlast"} {
		w.Write([]byte(p))
	}
	w.Flush()
	w.Flush() // nothing left: no call
	want := [][]string{{"a"}, {"bc", "", "d"}, {"ef"}, {"g"}, {"last"}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls %q, want %q", calls, want)
	}
	calls = nil
	w.Write([]byte(strings.Repeat("z", MaxLine+10)))
	w.Write([]byte("y\n" + strings.Repeat("x", 2*MaxLine) + "\n"))
	w.Flush()
	var lens []int
	for _, c := range calls {
		for _, l := range c {
			lens = append(lens, len(l))
		}
	}
	// A pending line is cut at MaxLine; a complete line of one write is whole.
	if fmt.Sprint(lens) != fmt.Sprint([]int{MaxLine, 11, 2 * MaxLine}) {
		t.Fatalf("line lengths %v", lens)
	}
}

func TestApplyLines(t *testing.T) {
	m := NewMasker()
	lines := func() []string {
		return []string{"plain", "token s3cret here", "line one", "a line two b", "s3cret-longer!", "", "x"}
	}
	got := lines()
	m.ApplyLines(got) // nothing registered: unchanged
	if fmt.Sprint(got) != fmt.Sprint(lines()) {
		t.Fatalf("no secrets: %q", got)
	}
	m.Add("s3cret")
	m.Add("line one\nline two")
	m.Add("s3cret-longer")
	for _, n := range []int{1, 2, len(lines())} { // a single line, and batches
		in := lines()[:n]
		got := append([]string(nil), in...)
		m.ApplyLines(got)
		for i := range in {
			if want := m.Apply(in[i]); got[i] != want {
				t.Errorf("batch of %d: line %d = %q, want %q", n, i, got[i], want)
			}
		}
	}
	got = []string{"nothing", "to hide", "here"}
	m.ApplyLines(got)
	if fmt.Sprint(got) != fmt.Sprint([]string{"nothing", "to hide", "here"}) {
		t.Errorf("changed lines without secrets: %q", got)
	}
	if m.Apply("a line one b line two c") != "a *** b *** c" {
		t.Errorf("Apply = %q", m.Apply("a line one b line two c"))
	}
	var nilM *Masker
	nilM.ApplyLines(got)
}

// A secret is hidden however the output is cut into writes: in one write,
// split across two, one byte at a time, and each line of a multi-line
// secret on its own line.
func TestMaskAcrossWrites(t *testing.T) {
	m := NewMasker()
	m.Add("s3cr3t-value")
	m.Add("first-line-of\nsecond-line-of")
	out := "before s3cr3t-value after\r\nfirst-line-of\nsecond-line-of\nend s3cr3t-value"
	for _, cut := range []int{0, 1, 10, 12, 30, 47, len(out) - 3} {
		for _, step := range []int{len(out), 1} {
			var shown []string
			w := NewBatchLineWriter(func(ls []string) {
				m.ApplyLines(ls)
				shown = append(shown, ls...)
			})
			parts := []string{out[:cut], out[cut:]}
			if step == 1 {
				parts = strings.Split(out, "")
			}
			for _, p := range parts {
				w.Write([]byte(p))
			}
			w.Flush()
			got := strings.Join(shown, "|")
			if want := "before *** after|***|***|end ***"; got != want {
				t.Errorf("cut %d step %d: %q, want %q", cut, step, got, want)
			}
		}
	}
}
