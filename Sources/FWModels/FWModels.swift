import FWOps
