package hsm_test

import (
	"testing"

	"github.com/tradecore/tradecore/internal/hsmtest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }
