// Package report renders a load.Result: a summary table for the terminal,
// machine-readable JSON, and an HTML page with latency-percentile and
// throughput-over-time charts (go-echarts).
//
//	report.Table(os.Stdout, res)
//	report.JSON(f, res)
//	report.HTML(f, res)
package report
