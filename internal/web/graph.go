package web

import (
	"fmt"
	"time"
)

// The job graph: one column per depth in the needs graph (a job sits one
// column right of its deepest need), one node per job, matrix legs listed
// inside their job's node, an edge from each need to its job.
const (
	nodeW    = 220
	nodeHead = 44 // title and status lines
	legH     = 18
	colGap   = 60
	rowGap   = 18
	pad      = 12
	maxLegs  = 8 // legs listed in a node; the rest are counted
)

type graph struct {
	Width, Height int
	Nodes         []graphNode
	Edges         []graphEdge
}

type graphNode struct {
	X, Y, W, H int
	Job        *job
	Href       string
	Status     string
	Duration   string
	Legs       []graphLeg
	MoreLegs   int
}

type graphLeg struct {
	Y      int
	Name   string
	Status string
}

type graphEdge struct {
	Path string
	Done bool
}

func layoutGraph(runID int64, jobs []job, now time.Time) graph {
	depth := depths(jobs)
	colY := map[int]int{}
	var g graph
	for i := range jobs {
		n := newNode(runID, &jobs[i], now)
		n.X = pad + depth[i]*(nodeW+colGap)
		n.Y = pad + colY[depth[i]]
		for k := range n.Legs {
			n.Legs[k].Y = n.Y + nodeHead + k*legH + 12
		}
		colY[depth[i]] += n.H + rowGap
		g.Nodes = append(g.Nodes, n)
		g.Width = max(g.Width, n.X+n.W+pad)
		g.Height = max(g.Height, n.Y+n.H+pad)
	}
	g.Edges = edges(jobs, g.Nodes)
	return g
}

// depths are the jobs' columns: one right of the deepest need.
func depths(jobs []job) []int {
	index := map[string]int{}
	for i := range jobs {
		index[jobs[i].Key] = i
	}
	depth := make([]int, len(jobs))
	state := make([]int, len(jobs)) // 0 new, 1 visiting, 2 done: a cycle (refused by the planner) cannot loop
	var visit func(i int) int
	visit = func(i int) int {
		if state[i] != 0 {
			return depth[i]
		}
		state[i] = 1
		d := 0
		for _, n := range jobs[i].Needs {
			if k, ok := index[n]; ok {
				d = max(d, visit(k)+1)
			}
		}
		depth[i], state[i] = d, 2
		return d
	}
	for i := range jobs {
		visit(i)
	}
	return depth
}

// newNode is a job's node, sized for its matrix legs.
func newNode(runID int64, j *job, now time.Time) graphNode {
	n := graphNode{Job: j, Href: fmt.Sprintf("/runs/%d/jobs/%d", runID, j.ID), Status: j.Status, Duration: j.Duration(now)}
	if legs := j.Legs(); len(legs) > 1 {
		for k, l := range legs {
			if k == maxLegs {
				n.MoreLegs = len(legs) - maxLegs
				break
			}
			n.Legs = append(n.Legs, graphLeg{Name: l.Name, Status: l.Result})
		}
	}
	n.W, n.H = nodeW, nodeHead+len(n.Legs)*legH
	if n.MoreLegs > 0 {
		n.H += legH
	}
	return n
}

// edges join each need's node to its job's node.
func edges(jobs []job, nodes []graphNode) []graphEdge {
	index := map[string]int{}
	for i := range jobs {
		index[jobs[i].Key] = i
	}
	var out []graphEdge
	for i := range jobs {
		for _, need := range jobs[i].Needs {
			k, ok := index[need]
			if !ok {
				continue
			}
			a, b := nodes[k], nodes[i]
			x1, y1 := a.X+a.W, a.Y+nodeHead/2
			x2, y2 := b.X, b.Y+nodeHead/2
			mid := (x1 + x2) / 2
			out = append(out, graphEdge{
				Path: fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, mid, y1, mid, y2, x2, y2),
				Done: terminal(jobs[k].Status),
			})
		}
	}
	return out
}
