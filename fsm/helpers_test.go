package fsm

import "context"

var bg = context.Background()

func withCancel() (context.Context, context.CancelFunc) { return context.WithCancel(bg) }
