int jitffi_oracle_placeholder(void) { return 0; }
