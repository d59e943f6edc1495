//! Synthetic companies: departments, a manager tree, contractors with end dates, service
//! accounts owned by people, and realistic names (apostrophes, commas, accents, non-Latin
//! scripts) so that every test and benchmark exercises the awkward cases real HR data has.
//!
//! Generation is deterministic for a seed.

use chrono::{Days, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;

const GIVEN: &[&str] = &[
    "Ana",
    "José",
    "Zoë",
    "Björn",
    "Łukasz",
    "Seán",
    "Chloé",
    "Noah",
    "Amara",
    "Liam",
    "Olivia",
    "Mateo",
    "Aiko",
    "Søren",
    "François",
    "Nguyễn",
    "Priya",
    "Kwame",
    "Ingrid",
    "Dmitri",
    "Mária",
    "Renée",
    "Élodie",
    "Tomás",
    "Fatima",
    "Yusuf",
    "Mary-Kate",
    "D'Arcy",
    "李",
    "美咲",
    "Мария",
    "Иван",
    "محمد",
    "שרה",
    "민준",
    "Αλέξανδρος",
];
const FAMILY: &[&str] = &[
    "O'Brien",
    "García",
    "Müller",
    "Smith",
    "D'Angelo",
    "Nakamura",
    "Kowalski",
    "Ødegaard",
    "Núñez",
    "van der Berg",
    "Smith, Jr.",
    "Johnson",
    "Williams",
    "Brown",
    "Dubois",
    "Rossi",
    "Ivanova",
    "Okafor",
    "Chen",
    "Patel",
    "Silva",
    "Lefèvre",
    "Dvořák",
    "Öztürk",
    "Jørgensen",
    "MacLeod",
    "de la Cruz",
    "王",
    "田中",
    "Петров",
    "الحسن",
    "כהן",
    "김",
];
const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Finance",
    "Marketing",
    "Operations",
    "Legal",
    "People",
    "Support",
    "Research",
    "Security",
];
const TITLES: &[&str] = &["Associate", "Specialist", "Senior Specialist", "Lead", "Manager", "Director", "Intern"];
const LOCATIONS: &[&str] = &["Berlin", "London", "New York", "São Paulo", "Tokyo", "Zürich", "Remote"];

/// The CSV header, matching the starter config written by `tenure init`.
pub const HEADER: &[&str] = &[
    "employee_id",
    "first_name",
    "last_name",
    "work_email",
    "login",
    "dept",
    "title",
    "location",
    "cost_center",
    "manager",
    "employment_type",
    "kind",
    "owner",
    "start",
    "end",
    "employment_status",
];

/// The same columns as [`SOURCE_TOML`], as a signed-webhook source `name` whose secret is in
/// `secret_file`: what the server's tests and benchmarks push to.
pub fn webhook_source_toml(name: &str, secret_file: &str) -> String {
    SOURCE_TOML
        .replace("name = \"hr\"", &format!("name = {name:?}"))
        .replace("kind = \"csv\"", &format!("kind = \"webhook\"\nsecret_file = {secret_file:?}"))
}

/// The `[[source]]` section that maps [`HEADER`] onto Tenure's attributes.
pub const SOURCE_TOML: &str = r#"[[source]]
name = "hr"
kind = "csv"
key = "employee_id"          # the CSV column that holds the identity id
[source.columns]             # attribute = CSV column
given_name = "first_name"
family_name = "last_name"
email = "work_email"
username = "login"
department = "dept"
title = "title"
location = "location"
cost_center = "cost_center"
manager_id = "manager"
employment_type = "employment_type"
kind = "kind"
owner_id = "owner"
start_date = "start"
end_date = "end"
status = "employment_status" # HR values: active, leave (-> suspended), terminated (-> leaver)
"#;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub given: String,
    pub family: String,
    pub email: String,
    pub username: String,
    pub department: String,
    pub title: String,
    pub location: String,
    pub cost_center: String,
    pub manager: Option<String>,
    pub employment_type: String,
    pub kind: String,
    pub owner: Option<String>,
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub people: usize,
    pub departments: usize,
    /// Fraction of people who are contractors (they have end dates).
    pub contractor_fraction: f64,
    /// Service accounts, each owned by a person.
    pub service_accounts: usize,
    pub today: NaiveDate,
    pub seed: u64,
}

impl Options {
    pub fn new(people: usize, today: NaiveDate) -> Self {
        Self { people, departments: 10, contractor_fraction: 0.1, service_accounts: people / 50, today, seed: 42 }
    }
}

#[derive(Debug, Clone)]
pub struct Company {
    pub people: Vec<Person>,
    pub today: NaiveDate,
    rng_state: u64,
    next_id: usize,
}

pub fn department(i: usize) -> String {
    DEPARTMENTS.get(i).map_or_else(|| format!("Department {i}"), |d| (*d).to_string())
}

fn ascii_slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let c = match c {
                'á' | 'à' | 'ã' | 'â' | 'ä' => 'a',
                'é' | 'è' | 'ê' | 'ë' | 'ễ' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ó' | 'ò' | 'ô' | 'ö' | 'ø' | 'Ø' | 'Ö' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ñ' => 'n',
                'ç' => 'c',
                'ł' | 'Ł' => 'l',
                'ř' => 'r',
                'ş' => 's',
                other => other,
            };
            c.is_ascii_alphabetic().then(|| c.to_ascii_lowercase())
        })
        .collect()
}

impl Company {
    pub fn generate(opts: &Options) -> Self {
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let mut people: Vec<Person> = Vec::with_capacity(opts.people + opts.service_accounts);
        let depts = opts.departments.max(1);
        // Per department: ids of people who can manage others.
        let mut managers: Vec<Vec<usize>> = vec![Vec::new(); depts];
        for n in 0..opts.people {
            let d = if n == 0 { 0 } else { rng.random_range(0..depts) };
            let manager = if n == 0 {
                None
            } else if managers.get(d).is_none_or(Vec::is_empty) {
                Some(0)
            } else {
                let pool = managers.get(d).map_or(&[][..], Vec::as_slice);
                pool.get(rng.random_range(0..pool.len())).copied()
            };
            let contractor = n > 0 && rng.random_bool(opts.contractor_fraction.clamp(0.0, 1.0));
            let p = person(&mut rng, n, &department(d), manager.map(|m| format!("E{m:06}")), contractor, opts.today);
            if !contractor
                && (managers.get(d).is_none_or(|v| v.len() < 50) || rng.random_bool(0.05))
                && let Some(v) = managers.get_mut(d)
            {
                v.push(n);
            }
            people.push(p);
        }
        for s in 0..opts.service_accounts {
            let owner_idx = rng.random_range(0..opts.people.max(1));
            let owner = people.get(owner_idx).cloned();
            let id = format!("S{s:06}");
            people.push(Person {
                id: id.clone(),
                given: "Service".into(),
                family: format!("Account {s}"),
                email: format!("svc-{s}@example.com"),
                username: format!("svc-{s}"),
                department: owner.as_ref().map_or_else(|| department(0), |o| o.department.clone()),
                title: "Service Account".into(),
                location: "Datacenter".into(),
                cost_center: owner.as_ref().map_or_else(String::new, |o| o.cost_center.clone()),
                manager: None,
                employment_type: String::new(),
                kind: if s % 5 == 4 { "bot".into() } else { "service".into() },
                owner: owner.map(|o| o.id),
                start: opts.today.checked_sub_days(Days::new(400)).unwrap_or(opts.today),
                end: None,
                status: "active".into(),
            });
        }
        let next_id = opts.people;
        Self { people, today: opts.today, rng_state: opts.seed.wrapping_add(1), next_id }
    }

    fn rng(&mut self) -> StdRng {
        self.rng_state = self.rng_state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        StdRng::seed_from_u64(self.rng_state)
    }

    /// Adds a joiner and returns their id.
    pub fn hire(&mut self, department_name: &str) -> String {
        let mut rng = self.rng();
        let n = self.next_id;
        self.next_id += 1;
        let manager =
            self.people.iter().find(|p| p.department == department_name && p.kind == "employee").map(|p| p.id.clone());
        let mut p = person(&mut rng, n, department_name, manager.or_else(|| Some("E000000".into())), false, self.today);
        p.start = self.today;
        let id = p.id.clone();
        self.people.push(p);
        id
    }

    /// Changes the department of a person.
    pub fn transfer(&mut self, id: &str, department_name: &str) {
        if let Some(p) = self.people.iter_mut().find(|p| p.id == id) {
            p.department = department_name.into();
        }
    }

    /// Removes a person's row (a leaver by absence). People they manage move to their manager.
    pub fn remove(&mut self, id: &str) {
        let manager = self.people.iter().find(|p| p.id == id).and_then(|p| p.manager.clone());
        self.people.retain(|p| p.id != id);
        for p in &mut self.people {
            if p.manager.as_deref() == Some(id) {
                p.manager.clone_from(&manager);
            }
        }
    }

    /// Changes about `fraction` of the population: department moves, leavers, joiners, in
    /// equal parts. Returns how many rows changed.
    pub fn churn(&mut self, fraction: f64) -> usize {
        let mut rng = self.rng();
        let n = ((self.people.len() as f64) * fraction).round() as usize;
        let third = n / 3;
        let depts: Vec<String> = {
            let mut d: Vec<String> = self.people.iter().map(|p| p.department.clone()).collect();
            d.sort();
            d.dedup();
            d
        };
        for _ in 0..third {
            let i = rng.random_range(1..self.people.len().max(2));
            let d = depts.get(rng.random_range(0..depts.len().max(1))).cloned().unwrap_or_default();
            if let Some(p) = self.people.get_mut(i) {
                p.department = d;
            }
        }
        for _ in 0..third {
            let i = rng.random_range(1..self.people.len().max(2));
            if let Some(id) = self.people.get(i).filter(|p| p.kind == "employee").map(|p| p.id.clone()) {
                self.remove(&id);
            }
        }
        for _ in 0..(n - 2 * third) {
            let d = depts.get(rng.random_range(0..depts.len().max(1))).cloned().unwrap_or_default();
            self.hire(&d);
        }
        n
    }

    pub fn get(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Person> {
        self.people.iter_mut().find(|p| p.id == id)
    }

    /// The snapshot as CSV (RFC 4180 quoting), in the starter config's column layout.
    pub fn to_csv(&self) -> String {
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
        let _ = w.write_record(HEADER);
        for p in &self.people {
            let start = p.start.to_string();
            let end = p.end.map(|d| d.to_string()).unwrap_or_default();
            let _ = w.write_record([
                p.id.as_str(),
                &p.given,
                &p.family,
                &p.email,
                &p.username,
                &p.department,
                &p.title,
                &p.location,
                &p.cost_center,
                p.manager.as_deref().unwrap_or(""),
                &p.employment_type,
                &p.kind,
                p.owner.as_deref().unwrap_or(""),
                &start,
                &end,
                &p.status,
            ]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

fn person(
    rng: &mut StdRng,
    n: usize,
    dept: &str,
    manager: Option<String>,
    contractor: bool,
    today: NaiveDate,
) -> Person {
    let given = GIVEN.get(rng.random_range(0..GIVEN.len())).copied().unwrap_or("Ana").to_string();
    let family = FAMILY.get(rng.random_range(0..FAMILY.len())).copied().unwrap_or("Smith").to_string();
    let mut base =
        format!("{}{}", ascii_slug(&given).chars().next().map(String::from).unwrap_or_default(), ascii_slug(&family));
    if base.len() < 2 {
        base = "user".into();
    }
    let username = format!("{base}{n}");
    let start = today.checked_sub_days(Days::new(rng.random_range(30..3000))).unwrap_or(today);
    let end = contractor.then(|| today.checked_add_days(Days::new(rng.random_range(30..365))).unwrap_or(today));
    Person {
        id: format!("E{n:06}"),
        email: format!("{username}@example.com"),
        username,
        given,
        family,
        department: dept.to_string(),
        title: TITLES.get(rng.random_range(0..TITLES.len())).copied().unwrap_or("Associate").to_string(),
        location: LOCATIONS.get(rng.random_range(0..LOCATIONS.len())).copied().unwrap_or("Remote").to_string(),
        cost_center: format!("CC-{}", 100 + dept.len() * 7 % 50),
        manager,
        employment_type: if contractor { "contractor".into() } else { "employee".into() },
        kind: if contractor { "contractor".into() } else { "employee".into() },
        owner: None,
        start,
        end,
        status: "active".into(),
    }
}

/// A large policy for benchmarks: `roles` roles over `entitlements` entitlements spread across
/// `targets`, conditioned on department, title, location and employment type.
pub fn bench_policy(roles: usize, entitlements: usize, targets: &[&str], departments: usize) -> String {
    let mut s = String::new();
    let _ =
        writeln!(s, "[mover]\nsignificant = [\"department\", \"cost_center\", \"employment_type\", \"location\"]\n");
    let per_role = entitlements.div_ceil(roles.max(1)).max(1);
    let mut e = 0usize;
    for r in 0..roles {
        let when = match r % 6 {
            0 => format!("{{ department = \"{}\" }}", department(r % departments.max(1))),
            1 => format!(
                "{{ department = \"{}\", title = {{ prefix = \"Senior\" }} }}",
                department(r % departments.max(1))
            ),
            2 => format!(
                "{{ location = \"{}\", status = \"active\" }}",
                LOCATIONS.get(r % LOCATIONS.len()).unwrap_or(&"Remote")
            ),
            3 => format!(
                "{{ department = [\"{}\", \"{}\"], not = {{ title = \"Intern\" }} }}",
                department(r % departments.max(1)),
                department((r + 1) % departments.max(1))
            ),
            4 => "{ employment_type = \"contractor\", end_date = { after = \"today\" } }".to_string(),
            _ => format!(
                "{{ title = \"{}\", kind = [\"employee\", \"contractor\"] }}",
                TITLES.get(r % TITLES.len()).unwrap_or(&"Lead")
            ),
        };
        let grants: Vec<String> = (0..per_role)
            .map(|_| {
                let t = targets.get(e % targets.len().max(1)).copied().unwrap_or("directory");
                let g = format!("\"{t}:ent-{}\"", e % entitlements.max(1));
                e += 1;
                g
            })
            .collect();
        let _ = writeln!(s, "[[role]]\nid = \"role-{r}\"\nwhen = {when}\ngrant = [{}]\n", grants.join(", "));
    }
    s
}
