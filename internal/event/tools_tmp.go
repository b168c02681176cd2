//go:build tools
package tools
import (
	_ "cel.dev/cel-go/cel"
	_ "github.com/robfig/cron/v3"
	_ "modernc.org/sqlite"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/prometheus/client_golang/prometheus"
)
