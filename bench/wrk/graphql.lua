-- wrk script of the benchmark (bench/load.py runs it).
-- Each request POSTs a body drawn at random from $BENCH_BODIES (one JSON body
-- per line, pre-generated with varied arguments) with $BENCH_TOKEN as bearer.
-- Every response is checked: a non-2xx status or a body carrying "errors"
-- counts as an error. done() prints one line "BENCH_RESULT {json}".

local bodies = {}
local threads = {}
-- globals, not locals: done() reads them per thread with thread:get()
gql_errors = 0
bad_status = 0
responses = 0
first_error = ""

local function load_bodies()
  local path = os.getenv("BENCH_BODIES")
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in f:lines() do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  f:close()
  assert(#bodies > 0, "no bodies in " .. path)
end

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  load_bodies()
  math.randomseed(os.time() * 1000 + id)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

function request()
  return wrk.format(nil, nil, nil, bodies[math.random(#bodies)])
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    bad_status = bad_status + 1
  elseif string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
  else
    return
  end
  if first_error == "" then first_error = status .. " " .. string.sub(body, 1, 300) end
end

function done(summary, latency, requests)
  local ge, bs, rs, fe = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    ge = ge + t:get("gql_errors")
    bs = bs + t:get("bad_status")
    rs = rs + t:get("responses")
    if fe == "" then fe = t:get("first_error") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "responses": %d, "gql_errors": %d,'
      .. ' "bad_status": %d, "socket_errors": %d, "timeouts": %d,'
      .. ' "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, rs, ge, bs,
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  if fe ~= "" then io.write("BENCH_FIRST_ERROR " .. string.gsub(fe, "\n", " ") .. "\n") end
end
