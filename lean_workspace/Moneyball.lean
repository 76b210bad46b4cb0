import Moneyball.Defs
