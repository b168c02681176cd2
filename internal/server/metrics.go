package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// metrics are the Prometheus series of one replica (its own registry: no
// global state).
type metrics struct {
	reg         *prometheus.Registry
	hooks       *prometheus.CounterVec
	hookLatency prometheus.Histogram
	dispatch    prometheus.Histogram
	jobDuration *prometheus.HistogramVec
	statuses    *prometheus.CounterVec
}

// jobStates is a collector reading the live jobs' counts by status from
// the store at scrape time (queue depth is the queued count): an index of
// the live jobs only, so a scrape costs the same after a million runs.
// Finished jobs are counted as they finish, by jobDuration's count.
type jobStates struct {
	st    store.Runs
	jobs  *prometheus.Desc
	depth *prometheus.Desc
}

func (c *jobStates) Describe(ch chan<- *prometheus.Desc) { ch <- c.jobs; ch <- c.depth }

func (c *jobStates) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := c.st.Stats(ctx)
	if err != nil {
		return
	}
	for _, st := range []string{store.StatusWaiting, store.StatusAwaitingApproval, store.StatusQueued, store.StatusRunning} {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(stats[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(stats[store.StatusQueued]))
}

func newMetrics(st store.Runs) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "conveyor_webhooks_total",
			Help: "Webhook requests by outcome (accepted, duplicate, ping, rejected_<reason>)."}, []string{"result"}),
		hookLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "conveyor_webhook_accept_seconds",
			Help: "Time from request to durable storage of an accepted webhook.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "conveyor_dispatch_latency_seconds",
			Help: "Time from a job being ready (queued) to its first step starting in its sandbox.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "conveyor_job_duration_seconds",
			Help: "Job run time on this replica by final status.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 16)}, []string{"status"}),
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "conveyor_commit_statuses_total",
			Help: "Commit status deliveries to forges by outcome."}, []string{"result"}),
	}
	m.reg.MustRegister(m.hooks, m.hookLatency, m.dispatch, m.jobDuration, m.statuses,
		&jobStates{st: st,
			jobs:  prometheus.NewDesc("conveyor_jobs", "Live jobs by status: waiting, awaiting_approval, queued, running (all replicas).", []string{"status"}, nil),
			depth: prometheus.NewDesc("conveyor_queue_depth", "Jobs ready and waiting for a worker.", nil, nil)},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
