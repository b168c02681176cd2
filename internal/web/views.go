package web

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// The API's answers as the pages read them.

type runDetail struct {
	Run  api.Run `json:"run"`
	Jobs []job   `json:"jobs"`
}

type job struct {
	api.Job
}

// reviewerNames are an environment's reviewers as text ("alice, role
// maintainer").
func reviewerNames(rs []api.Reviewer) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.User != "" {
			out = append(out, r.User)
		} else if r.Role != "" {
			out = append(out, "role "+r.Role)
		}
	}
	return strings.Join(out, ", ")
}

// leg is one matrix instance of a job (exec.JobResult as stored).
type leg struct {
	Name     string        `json:"name"`
	Result   string        `json:"result"`
	Duration time.Duration `json:"duration"`
}

// Legs are the job's matrix instances once it ran (one when no matrix).
func (j *job) Legs() []leg {
	var ls []leg
	if len(j.Results) > 0 {
		_ = json.Unmarshal(j.Results, &ls) // results of another shape show no legs
	}
	return ls
}

// Title is the job's display name.
func (j *job) Title() string {
	if j.Name != "" {
		return j.Name
	}
	return j.Key
}

// Duration is how long the job ran ("" before it started).
func (j *job) Duration(now time.Time) string { return span(j.Started, j.Finished, now) }

// AwaitingApproval: the job waits for a reviewer.
func (j *job) AwaitingApproval() bool { return j.Status == "awaiting_approval" }

// span is the duration between start and end (now while running).
func span(start, end *time.Time, now time.Time) string {
	if start == nil {
		return ""
	}
	e := now
	if end != nil {
		e = *end
	}
	return human(e.Sub(*start))
}

// human formats a duration as GitHub does: 1h 2m 3s, 4m 5s, 6s.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %dm %ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// shortRef is a ref without refs/heads/ or refs/tags/.
func shortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if s, ok := strings.CutPrefix(ref, p); ok {
			return s
		}
	}
	return ref
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// firstLine is a commit message's subject.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// terminal statuses end a run or job.
func terminal(status string) bool {
	switch status {
	case "success", "failure", "cancelled", "skipped", "error", "timed_out", "rejected":
		return true
	}
	return false
}

// statusLabel is how a status reads.
func statusLabel(status string) string {
	if status == "" {
		return "unknown"
	}
	return strings.ReplaceAll(status, "_", " ")
}

// escapes are terminal escape sequences (CSI, OSC, DCS/SOS/PM/APC, and
// two-byte ones) and the other control characters but tab and newline.
var escapes = regexp.MustCompile(`\x1b\[[0-9;:?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[ -/]*[0-~]?|[\x00-\x08\x0b-\x1f\x7f\x{80}-\x{9f}]`)

// plain is user text (a commit message) without terminal escapes and
// control characters, which a page would show as boxes.
// Invalid UTF-8 is replaced first, so that removing a control byte cannot
// join two stray bytes into a control character.
func plain(s string) string {
	return escapes.ReplaceAllString(strings.ToValidUTF8(s, "\uFFFD"), "")
}
