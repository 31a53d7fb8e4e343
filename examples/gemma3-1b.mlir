// Gemma 3 1B: 26 layers, window 512, every 6th layer global.
// Sliding layers: RoPE theta 1e4; global layers: RoPE theta 1e6.
// Scale = query_pre_attn_scalar^-0.5 = 256^-0.5 = 0.0625.
hybrid.schedule @gemma3_1b layers = 26 attributes {
    hidden_size = 1152 : i64, max_position = 32768 : i64,
    model_type = "gemma3_text"} {
  hybrid.repeat 4 {
    hybrid.repeat 5 {
      hybrid.layer sliding heads 4 kv_heads 1 head_dim 256
        mask <kind = sliding_window, window = 512>
        pos <kind = rope, theta = 10000.0> score <scale = 0.0625>
    }
    hybrid.layer full heads 4 kv_heads 1 head_dim 256 mask <kind = full>
      pos <kind = rope, theta = 1000000.0> score <scale = 0.0625>
  }
  hybrid.repeat 2 {
    hybrid.layer sliding heads 4 kv_heads 1 head_dim 256
      mask <kind = sliding_window, window = 512>
      pos <kind = rope, theta = 10000.0> score <scale = 0.0625>
  }
}
