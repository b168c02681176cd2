package exec

import "time"

// EventType says what an Event2 reports.
type EventType int

const (
	JobStarted EventType = iota
	JobFinished
	StepStarted
	StepFinished
	Output     // a line of step output (already masked)
	GroupStart // ::group::title
	GroupEnd
	Annotation // ::error/warning/notice, Level set
	Notice     // a line from Conveyor itself about the job (backend mode...)
	RunError   // an error that is not a job's (a workflow that cannot run)
)

// Event2 is one thing that happened during a run, reported as it happens.
// Text is always masked.
type Event2 struct {
	Type     EventType
	Time     time.Time
	JobKey   string // unique per job instance
	Job      string // display name (with matrix values)
	Step     string // display name of the step
	StepID   string
	Text     string
	Level    string // annotation level: error, warning, notice
	File     string // annotation file
	Line     int    // annotation line
	Result   string // with *Finished
	Duration time.Duration
}

// Reporter receives events. Implementations must be safe for concurrent
// use: jobs run in parallel.
type Reporter interface {
	Report(ev Event2)
}

// LinesReporter is an optional Reporter ability: several Output lines of a
// step in one call, so that a step printing many lines does not cost a
// call, a lock and a clock read per line. ev is the lines' Output event
// with Text unset (Time is theirs); lines (already masked) is only valid
// during the call, its strings may be kept. Without it, the executor calls
// Report once per line.
type LinesReporter interface {
	Reporter
	ReportLines(ev Event2, lines []string)
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(ev Event2)

// Report calls f.
func (f ReporterFunc) Report(ev Event2) { f(ev) }
