package classify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

// ConsumerName is the durable JetStream consumer of the classifier. It is a
// permanent ID: renaming it would classify every retained ScanCompleted
// again (harmless, since Classify is idempotent, but wasted work).
const ConsumerName = "classifier"

// NewConsumer creates (or updates) the classifier's durable consumer of
// ScanCompleted events on the JetStream stream under subject prefix, and
// returns it; its Run(ctx) classifies each completed scan with c until ctx
// ends. Each message is handled by Classifier.Handle: a failure is
// redelivered with a backoff and, after vnats.DefaultMaxDeliver deliveries,
// parked in dl. Several processes may run it; classifications of one
// repository serialise on its index. log nil discards.
func NewConsumer(ctx context.Context, js jetstream.JetStream, stream, prefix string, dl vnats.DeadLetters, c *Classifier, log *slog.Logger) (*vnats.Consumer, error) {
	if c == nil {
		return nil, errors.New("new classifier consumer: classifier is nil")
	}
	cfg := vnats.ConsumerConfig{
		Name:          ConsumerName,
		FilterSubject: vnats.TypeSubject(prefix, commands.CategoryScan, (domain.ScanCompleted{}).EventName()),
		DeadLetters:   dl,
		Logger:        log,
	}
	cons, err := vnats.NewConsumer(ctx, js, stream, cfg, func(ctx context.Context, env vnats.Envelope) error {
		e, err := env.RecordedEvent()
		if err != nil {
			return err
		}
		return c.Handle(ctx, e)
	})
	if err != nil {
		return nil, fmt.Errorf("new classifier consumer: %w", err)
	}
	return cons, nil
}
