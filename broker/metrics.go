package broker

import (
	"strconv"
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/system"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the broker's Prometheus series, in a registry of its own so
// several brokers in one process (as in tests) never collide.
type metrics struct {
	reg           *prometheus.Registry
	connects      prometheus.Counter
	disconnects   *prometheus.CounterVec
	messagesIn    [3]prometheus.Counter // by QoS 0..2
	messagesOut   [3]prometheus.Counter
	dropped       *prometheus.CounterVec
	expired       prometheus.Counter
	authDenied    *prometheus.CounterVec
	panics        prometheus.Counter
	eventsDropped prometheus.Counter
}

func newMetrics(info func() *system.Info) *metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{reg: reg}

	m.connects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "courier_connects_total", Help: "Client connections accepted (CONNACK success).",
	})
	m.disconnects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "courier_disconnects_total", Help: "Client disconnections by reason.",
	}, []string{"reason"})
	in := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "courier_messages_received_total", Help: "PUBLISH packets received from clients, by QoS.",
	}, []string{"qos"})
	out := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "courier_messages_sent_total", Help: "PUBLISH packets sent to clients, by QoS.",
	}, []string{"qos"})
	for q := range 3 {
		m.messagesIn[q] = in.WithLabelValues(strconv.Itoa(q))
		m.messagesOut[q] = out.WithLabelValues(strconv.Itoa(q))
	}
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "courier_messages_dropped_total", Help: "Messages dropped for a subscriber, by reason.",
	}, []string{"reason"})
	m.expired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "courier_sessions_expired_total", Help: "Disconnected sessions removed at their expiry.",
	})
	m.authDenied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "courier_auth_denied_total", Help: "Requests refused by authentication or ACL, by operation.",
	}, []string{"op"})
	m.panics = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "courier_connection_panics_total", Help: "Connections closed because handling them panicked.",
	})
	m.eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "courier_events_dropped_total", Help: "Events not delivered to a full observer.",
	})
	f(m.connects)
	f(m.disconnects)
	f(in)
	f(out)
	f(m.dropped)
	f(m.expired)
	f(m.authDenied)
	f(m.panics)
	f(m.eventsDropped)

	gauge := func(name, help string, v func(*system.Info) *int64) {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			return float64(atomic.LoadInt64(v(info())))
		}))
	}
	counter := func(name, help string, v func(*system.Info) *int64) {
		f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			return float64(atomic.LoadInt64(v(info())))
		}))
	}
	gauge("courier_connections", "Clients currently connected.", func(i *system.Info) *int64 { return &i.ClientsConnected })
	gauge("courier_inflight_messages", "QoS 1/2 messages in flight or queued for sessions.", func(i *system.Info) *int64 { return &i.Inflight })
	gauge("courier_retained_messages", "Retained messages held.", func(i *system.Info) *int64 { return &i.Retained })
	gauge("courier_subscriptions", "Subscriptions held.", func(i *system.Info) *int64 { return &i.Subscriptions })
	counter("courier_received_bytes_total", "Bytes received from clients.", func(i *system.Info) *int64 { return &i.BytesReceived })
	counter("courier_sent_bytes_total", "Bytes sent to clients.", func(i *system.Info) *int64 { return &i.BytesSent })
	counter("courier_inflight_dropped_total", "QoS 1/2 messages refused because a session's queue was full.", func(i *system.Info) *int64 { return &i.InflightDropped })

	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
