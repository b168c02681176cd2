package server

import (
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// compileJobs gives each job of a new run its compiled form (Spec), made
// once here: workers run it without reading the workflow file.
func compileJobs(wf *workflow.Workflow, event string, jobs []*store.Job) error {
	for _, j := range jobs {
		spec, err := plan.Spec(wf, j.Key, event)
		if err != nil {
			return err
		}
		if j.Spec, err = jobspec.EncodeJob(spec); err != nil {
			return err
		}
	}
	return nil
}

// compiledJob is the compiled form of a leased job: the stored one, or,
// for a job stored without one (made before compiled jobs were stored,
// or under a contract version this build does not read), compiled now
// from the run's workflow file.
func (s *Server) compiledJob(l *store.Lease) (*jobspec.Job, error) {
	if len(l.Job.Spec) > 0 {
		j, err := jobspec.DecodeJob(l.Job.Spec)
		if err == nil && j.ID == l.Job.Key {
			return j, nil
		}
		s.log.Info("compiling a job again: its stored compiled form is not usable", "job", l.Job.ID, "err", err)
	}
	wf, probs := s.src.workflows.lint(l.Run.WorkflowYAML, l.Run.Workflow)
	if wf == nil || len(probs) > 0 {
		return nil, errs.E("job", errs.Invalid, "invalid workflow: %v", probs)
	}
	j, err := plan.Spec(wf, l.Job.Key, l.Run.Event)
	if err != nil {
		return nil, errs.Wrap("cannot compile the job", errs.KindOf(err), err)
	}
	return j, nil
}
