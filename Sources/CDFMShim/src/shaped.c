void cdfm_shaped_placeholder(void) {}
