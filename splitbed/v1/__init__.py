"""Generated from proto/splitbed/v1 by scripts/gen_proto.py; do not edit."""
